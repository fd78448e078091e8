"""Names opsbook proposes, as the server will keep them."""
from __future__ import annotations

NAMEDATALEN = 64  # PostgreSQL cuts a name to 63 bytes (not characters): a longer proposed name would collide


def fit(stem: str, suffix: str = "") -> str:
    """`stem` + `suffix` within 63 bytes of UTF-8, cut from the stem at a character boundary."""
    room = NAMEDATALEN - 1 - len(suffix.encode())
    return stem.encode()[:max(room, 0)].decode(errors="ignore") + suffix
