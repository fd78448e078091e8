"""The incident window: `now`, `now-2h`, or ISO 8601 with a time zone, plus padding for context."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ...config.when import parse_when
from ...core.errors import ParameterError

SEVERITIES = ("P0", "P1", "P2", "P3")


@dataclass(frozen=True)
class Window:
    """[start, end] of the incident; `before`/`after` widen it by the padding for context."""

    start: datetime
    end: datetime
    padding: timedelta
    origin: str = ""  # where the window came from when not from the parameters as given (shown in the report)

    @property
    def before(self) -> datetime:
        return self.start - self.padding

    @property
    def after(self) -> datetime:
        return self.end + self.padding

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def inside(self, ts: datetime) -> bool:
        return self.start <= ts <= self.end

    def padding_text(self) -> str:
        s = self.padding.total_seconds()
        return f"{s:g} s" if s < 60 else f"{s / 60:g} min"

    def text(self) -> str:
        same_day = self.start.date() == self.end.date()
        return (f"{self.start:%Y-%m-%d %H:%M:%S} to {self.end:%H:%M:%S} UTC" if same_day else
                f"{self.start:%Y-%m-%d %H:%M:%S} to {self.end:%Y-%m-%d %H:%M:%S} UTC")


def make_window(incident_start: str, incident_end: str, padding_minutes: float = 30, *,
                now: datetime | None = None) -> Window:
    now = now or datetime.now(timezone.utc)
    start = parse_when(incident_start, now=now, name="incident_start")
    end = parse_when(incident_end, now=now, name="incident_end")
    if end <= start:
        raise ParameterError(f"incident_end ({end:%Y-%m-%d %H:%M:%SZ}) must be after incident_start "
                             f"({start:%Y-%m-%d %H:%M:%SZ})")
    if not isinstance(padding_minutes, (int, float)) or padding_minutes < 0:
        raise ParameterError(f"padding_minutes must be a number of minutes >= 0, got {padding_minutes!r}")
    return Window(start, end, timedelta(minutes=padding_minutes))


def recorded_window(start: float, end: float, padding_s: float, origin: str) -> Window:
    """The window of a recorded incident (epoch seconds), padded by seconds."""
    return Window(datetime.fromtimestamp(start, tz=timezone.utc), datetime.fromtimestamp(end, tz=timezone.utc),
                  timedelta(seconds=padding_s), origin)


def check_severity(severity: str) -> str:
    s = str(severity).strip().upper()
    if s not in SEVERITIES:
        raise ParameterError(f"severity {severity!r} must be one of {', '.join(SEVERITIES)}")
    return s


def check_parameters(values: dict, config=None, target=None) -> None:
    """post-mortem's window taken as a whole, before the run (notebook metadata `check_parameters`): an end before
    its start is a usage error, exit 2, like each time on its own."""
    make_window(values.get("incident_start", DEFAULT_START), values.get("incident_end", DEFAULT_END),
                values.get("padding_minutes", 30))


DEFAULT_START, DEFAULT_END = "now-2h", "now"  # the parameters cell's defaults
