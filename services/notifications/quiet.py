"""Quiet hours: when non-urgent messages wait, in China Standard Time."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.notifications import config

ZONE = ZoneInfo(config.TIME_ZONE)
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class QuietHours:
    """A daily window [start, end) in minutes after local midnight; it may
    cross midnight (start > end)."""

    start_minute: int
    end_minute: int

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(ZONE)
        minute = local.hour * 60 + local.minute
        if self.start_minute < self.end_minute:
            return self.start_minute <= minute < self.end_minute
        return minute >= self.start_minute or minute < self.end_minute

    def ends_after(self, moment: datetime) -> datetime:
        """When the quiet window holding moment ends (moment if it is not quiet)."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(ZONE)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = midnight + timedelta(minutes=self.end_minute)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(moment.tzinfo)

    def blocks_until(self, moment: datetime, expire_time: datetime) -> bool:
        """Whether every moment from moment to expire_time is quiet, so a
        non-urgent message could never be sent in time."""
        return self.contains(moment) and self.ends_after(moment) >= expire_time
