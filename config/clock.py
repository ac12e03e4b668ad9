"""The union's clock: dates are Asia/Shanghai dates, whatever the server's zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")


def now() -> dt.datetime:
    """Local (Asia/Shanghai) wall-clock time, naive."""
    return dt.datetime.now(ZONE).replace(tzinfo=None)


def today() -> dt.date:
    """Today's date in Asia/Shanghai."""
    return now().date()
