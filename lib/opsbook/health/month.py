"""A report month: `YYYY-MM` (default: the last complete month) as a half-open interval in the month's time zone
(UTC unless the schedule names one), and the one before."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..core.errors import ParameterError

UTC = dt.timezone.utc
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


@dataclass(frozen=True)
class Month:
    year: int
    month: int
    tz: dt.tzinfo = field(default=UTC, compare=False)  # whose midnight starts the month

    @property
    def start(self) -> dt.datetime:
        """Midnight of the 1st in the month's zone, as a UTC datetime."""
        return dt.datetime(self.year, self.month, 1, tzinfo=self.tz).astimezone(UTC)

    @property
    def end(self) -> dt.datetime:
        return self.next().start

    @property
    def label(self) -> str:
        return f"{dt.date(self.year, self.month, 1):%B %Y}"

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def zone(self) -> str:
        """The zone's name, as the report says it (`UTC`, `Europe/Berlin`)."""
        return getattr(self.tz, "key", None) or str(self.tz)

    def next(self) -> "Month":
        return Month(self.year + self.month // 12, self.month % 12 + 1, self.tz)

    def previous(self) -> "Month":
        return Month(self.year - (self.month == 1), 12 if self.month == 1 else self.month - 1, self.tz)

    def contains(self, t: dt.datetime) -> bool:
        return self.start <= t < self.end


def parse_zone(name: str | None) -> dt.tzinfo:
    """An IANA zone name (`Europe/Berlin`); empty or None: UTC."""
    if not name or str(name).strip().upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(str(name).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ParameterError(f"timezone {name!r} is not a time zone name, e.g. Europe/Berlin or UTC") from None


def parse_month(text: str | None, now: dt.datetime | None = None, tz: dt.tzinfo | str | None = None) -> Month:
    """`2026-11`, or empty/None for the last complete month before `now` (on the clock of `tz` when given, else of
    `now` itself), with its days counted in `tz` (default UTC)."""
    zone = parse_zone(tz) if tz is None or isinstance(tz, str) else tz
    now = now or dt.datetime.now(UTC)
    if tz is not None and now.tzinfo is not None:
        now = now.astimezone(zone)
    if not text:
        return Month(now.year, now.month, zone).previous()
    m = _MONTH.match(str(text).strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ParameterError(f"month {text!r} must look like YYYY-MM, e.g. 2026-11")
    month = Month(int(m.group(1)), int(m.group(2)), zone)
    if month.start > now:
        raise ParameterError(f"month {text} has not begun yet")
    return month
