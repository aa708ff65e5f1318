"""Time as the rest of the code sees it: one clock type, one "now", one default timezone.

Services and handlers take a `Clock` (injected by the composition root) instead of calling
`datetime.now()` deep inside, so tests can hold time still.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: A source of aware UTC instants.
Clock = Callable[[], datetime]

#: Timezone of stations that name none (the `DEFAULT_TZ` setting's default): China keeps one time zone.
DEFAULT_TZ = "Asia/Shanghai"


def utc_now() -> datetime:
    """The current instant, aware, in UTC: the production `Clock`."""
    return datetime.now(UTC)
