"""Logs and metrics: what operators see of a running process.

Logs are one JSON object per line in production (containers, log collectors) and a readable line on a
terminal. Every line written while an update is handled carries its `update_id` and `user_id`, whoever
logs it (our code, aiogram, SQLAlchemy): the values live in context variables that an outer middleware
sets and a logging filter copies onto each record.

Metrics are Prometheus metrics in one registry per process, created by the composition root and handed to
the edges that observe something (the dispatcher, the web app, the broadcaster). Services never import
this module: they accept plain callbacks (`observe_search`, `on_delivery`).

This module imports neither aiogram nor aiohttp, so that every command can configure its logging cheaply.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from domain.statuses import DeliveryStatus

__all__ = [
    "CONTENT_TYPE_LATEST",
    "ContextFilter",
    "JsonFormatter",
    "Metrics",
    "TextFormatter",
    "configure_logging",
    "log_context",
    "update_id_var",
    "user_id_var",
]

update_id_var: ContextVar[int | None] = ContextVar("update_id", default=None)
user_id_var: ContextVar[int | None] = ContextVar("user_id", default=None)

LOG_FORMATS = ("auto", "json", "text")


@contextmanager
def log_context(update_id: int | None, user_id: int | None) -> Iterator[None]:
    """Log lines written inside carry this update and user (restored on the way out)."""
    update_token = update_id_var.set(update_id)
    user_token = user_id_var.set(user_id)
    try:
        yield
    finally:
        user_id_var.reset(user_token)
        update_id_var.reset(update_token)


class ContextFilter(logging.Filter):
    """Copies the update and user of the current context onto each record (a value given with `extra=`
    wins). Attached to handlers, not loggers, so that records propagated from any logger pass through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "update_id", None) is None:
            record.update_id = update_id_var.get()
        if getattr(record, "user_id", None) is None:
            record.user_id = user_id_var.get()
        return True


def _context(record: logging.LogRecord) -> tuple[int | None, int | None]:
    # Records that did not pass a ContextFilter (another handler's) still get the context of now.
    update_id = getattr(record, "update_id", None)
    user_id = getattr(record, "user_id", None)
    if update_id is None:
        update_id = update_id_var.get()
    if user_id is None:
        user_id = user_id_var.get()
    return update_id, user_id


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, then `update_id`,
    `user_id`, `exception` and `stack` when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        update_id, user_id = _context(record)
        if update_id is not None:
            entry["update_id"] = update_id
        if user_id is not None:
            entry["user_id"] = user_id
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Chinese stays readable; json.dumps escapes newlines, so one record is always one line.
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2025-06-03 12:00:00,123 INFO handlers.search [update 123 user 456]: message` on a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        update_id, user_id = _context(record)
        parts = []
        if update_id is not None:
            parts.append(f"update {update_id}")
        if user_id is not None:
            parts.append(f"user {user_id}")
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (test runners swap it), like logging's last resort."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def configure_logging(
    fmt: str = "auto", level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to stderr (or `stream`) as JSON lines (`json`) or readable text (`text`);
    `auto` is text on a terminal and JSON otherwise. Calling it again replaces the handler it installed."""
    fmt = fmt.lower()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    if fmt == "auto":
        fmt = "text" if _is_tty(stream if stream is not None else sys.stderr) else "json"
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler._yizhan = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_yizhan", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Migrations announce every plugin and step at INFO; only their problems are worth a line.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    # aiosqlite logs every statement with its parameters at DEBUG: riders' positions among them (-v).
    logging.getLogger("aiosqlite").setLevel(max(level, logging.INFO))
    return handler


# -- metrics -----------------------------------------------------------------------------------------------

#: From half a millisecond (an update answered from caches) to 2.5 s (a slow Bot API call).
HANDLER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: The search runs in tens of microseconds on the index; opening hours and re-ranking add to it.
SEARCH_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
#: From a free connection taken at once (microseconds) to DB_POOL_TIMEOUT and SQLAlchemy's 30 s.
POOL_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ERROR_PLACES = ("bot", "web")
REFUSALS = ("overloaded", "database_busy", "rate_limited")
#: Delivery outcomes as counted: an outbox row back to `pending` counts as a retry.
DELIVERY_STATUSES = (
    DeliveryStatus.SENT.value,
    DeliveryStatus.FAILED.value,
    DeliveryStatus.BLOCKED.value,
    "retry",
)


class Metrics:
    """This process's metrics, in a registry of its own (tests build as many as they like)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.updates = Counter("yizhan_updates", "Telegram updates received, by type", ["type"], registry=r)
        self.handler_seconds = Histogram(
            "yizhan_handler_seconds",
            "Time to handle one Telegram update, middlewares included",
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.search_seconds = Histogram(
            "yizhan_search_seconds",
            "Time of one nearest-open search on the in-process index",
            buckets=SEARCH_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "yizhan_errors",
            "Unhandled errors: bot handlers (bot) and HTTP 500 answers (web)",
            ["where"],
            registry=r,
        )
        self.announcements_sent = Counter(
            "yizhan_announcements_sent",
            "Announcement delivery attempts, by outcome (sent, failed, blocked, retry)",
            ["status"],
            registry=r,
        )
        self.index_stations = Gauge(
            "yizhan_index_stations", "Stations in this process's spatial index", registry=r
        )
        self.http_requests = Counter(
            "yizhan_http_requests",
            "HTTP answers, by route (its pattern) and status",
            ["route", "status"],
            registry=r,
        )
        self.http_refused = Counter(
            "yizhan_http_refused",
            "HTTP requests refused: overloaded and database_busy (503), rate_limited (429)",
            ["reason"],
            registry=r,
        )
        self.http_in_flight = Gauge(
            "yizhan_http_in_flight",
            "HTTP requests being handled, by lane (public, bot)",
            ["lane"],
            registry=r,
        )
        self.db_pool_checked_out = Gauge(
            "yizhan_db_pool_checked_out",
            "Database connections in use, by pool (main; api when the API has a pool of its own)",
            ["pool"],
            registry=r,
        )
        self.db_pool_timeouts = Counter(
            "yizhan_db_pool_timeouts",
            "Requests that waited DB_POOL_TIMEOUT for a database connection in vain",
            registry=r,
        )
        self.db_pool_wait_seconds = Histogram(
            "yizhan_db_pool_wait_seconds",
            "Time to get a pooled database connection (waiting for a free one, or opening one), by pool",
            ["pool"],
            buckets=POOL_WAIT_BUCKETS,
            registry=r,
        )
        self._answers: dict[tuple[str, int], Any] = {}
        # Known label values are exported from the start, so rates and alerts work before the first event.
        for reason in REFUSALS:
            self.http_refused.labels(reason)
        for where in ERROR_PLACES:
            self.errors.labels(where)
        for status in DELIVERY_STATUSES:
            self.announcements_sent.labels(status)

    def track_index(self, size: Callable[[], int]) -> None:
        """The index gauge reads `size()` at each scrape (the index is replaced when reloaded)."""
        self.index_stations.set_function(lambda: float(size()))

    def track_pool(self, name: str, pool: Any) -> None:
        """The pool gauge reads SQLAlchemy's `pool.checkedout()` at each scrape."""
        self.db_pool_checked_out.labels(name).set_function(lambda: float(pool.checkedout()))

    def pool_wait(self, name: str) -> Callable[[float], None]:
        """What an engine calls with the seconds each checkout of pool `name` took."""
        return self.db_pool_wait_seconds.labels(name).observe

    def track_lane(self, name: str, in_flight: Callable[[], int]) -> None:
        self.http_in_flight.labels(name).set_function(lambda: float(in_flight()))

    def http_answer(self, route: str, status: int, count: int = 1) -> None:
        # The labelled child is looked up once per (route, status): `labels()` takes a lock and builds a
        # key each time, a few microseconds on every answer of a crowded process.
        child = self._answers.get((route, status))
        if child is None:
            child = self._answers[(route, status)] = self.http_requests.labels(route, str(status))
        child.inc(count)

    def refused(self, reason: str, count: int = 1) -> None:
        self.http_refused.labels(reason).inc(count)
        if reason == "database_busy":
            self.db_pool_timeouts.inc(count)

    def observe_search(self, seconds: float) -> None:
        self.search_seconds.observe(seconds)

    def delivery(self, status: str) -> None:
        """One announcement delivery attempt ended with `status` (the outbox's `pending` counts as retry)."""
        self.announcements_sent.labels("retry" if status == DeliveryStatus.PENDING else str(status)).inc()

    def error(self, where: str) -> None:
        self.errors.labels(where).inc()

    def exposition(self) -> bytes:
        """The text exposition format (serve it as `CONTENT_TYPE_LATEST`)."""
        return generate_latest(self.registry)
