"""ISO weeks at the site: "2026-W47" and the instants it starts and ends. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

WEEK_PATTERN = re.compile(r"^(\d{4})-W(\d{2})$")
# A report reaches weeks before and after the one asked for (trends, the next week's
# Monday), which must still be dates: nothing at the ends of the calendar, and no site has
# decisions from before 1970.
YEARS = range(1970, 9999)


class BadWeek(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Week:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        match = WEEK_PATTERN.match(text.strip())
        if not match:
            raise BadWeek(f"{text!r} is not an ISO week; write it like 2026-W47")
        year, number = int(match[1]), int(match[2])
        if year not in YEARS:
            raise BadWeek(f"{year} is outside the years Loupe reports on ({YEARS[0]}-{YEARS[-1]})")
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError as exc:
            raise BadWeek(f"{year} has no week {number}") from exc
        return cls(year, number)

    @classmethod
    def of(cls, instant: datetime, timezone: str) -> Week:
        year, number, _ = instant.astimezone(ZoneInfo(timezone)).isocalendar()
        return cls(year, number)

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """[start, end): Monday 00:00 to the next Monday 00:00 at the site."""
        zone = ZoneInfo(timezone)
        monday = self.monday()
        start = datetime(monday.year, monday.month, monday.day, tzinfo=zone)
        following = monday + timedelta(days=7)
        end = datetime(following.year, following.month, following.day, tzinfo=zone)
        return start, end

    def shifted(self, weeks: int) -> Week:
        year, number, _ = (self.monday() + timedelta(weeks=weeks)).isocalendar()
        return Week(year, number)

    def is_closed(self, now: datetime, timezone: str) -> bool:
        return self.bounds(timezone)[1] <= now
