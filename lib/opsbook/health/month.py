"""A report month: `YYYY-MM` (default: the last complete month) as a half-open UTC interval, and the one before."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ..core.errors import ParameterError

UTC = dt.timezone.utc
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @property
    def start(self) -> dt.datetime:
        return dt.datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> dt.datetime:
        return self.next().start

    @property
    def label(self) -> str:
        return f"{self.start:%B %Y}"

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> "Month":
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> "Month":
        return Month(self.year - (self.month == 1), 12 if self.month == 1 else self.month - 1)

    def contains(self, t: dt.datetime) -> bool:
        return self.start <= t < self.end


def parse_month(text: str | None, now: dt.datetime | None = None) -> Month:
    """`2026-11`, or empty/None for the last complete month before `now`."""
    now = now or dt.datetime.now(UTC)
    if not text:
        return Month(now.year, now.month).previous()
    m = _MONTH.match(str(text).strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ParameterError(f"month {text!r} must look like YYYY-MM, e.g. 2026-11")
    month = Month(int(m.group(1)), int(m.group(2)))
    if month.start > now:
        raise ParameterError(f"month {text} has not begun yet")
    return month
