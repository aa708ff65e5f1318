"""Admission control and per-client rate limits: a crowded process answers fast, and never with a 500.

Three refusals, each a JSON error with `Retry-After`, decided before a handler runs (or, for the database,
as soon as it would wait):

- `503 overloaded`: the lane's in-flight requests are at their bound (requests that wait on something:
  the database, Redis, a big document), or the request came in a turn of the event loop that already read
  `max_new_per_turn` new requests. Requests answered from memory never wait on anything, so under a flood
  they pile up in the loop's queue instead: every socket's request is read in one turn and handled one
  after the other, so the later ones would be answered too late to be worth the work. Those beyond the
  turn's budget are refused by the connection itself as their bytes arrive, with a prepared answer, at a
  fraction of the cost of a request through aiohttp (`bot/web/server.py`); those the connection cannot
  check as read (pipelined, or sent before the answer before was done with) take their slot of the turn
  as they enter the app, and are refused there;
- `503 database_busy`: no pooled database connection within `DB_POOL_TIMEOUT` (a second, not 30);
- `408 body_timeout` (not a load refusal, but the same concern): a request body (a POST's) that has not
  arrived `HTTP_BODY_TIMEOUT` seconds after its headers; a slow client cannot hold a slot for longer;
- `429 rate_limited`: one client (its address, or the one `X-Forwarded-For` names when the request came
  through a trusted proxy) is over its GCRA limit (storage/ratelimit.py). API answers carry the limit's
  `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers.

Telegram's updates (webhook mode) have a lane of their own, so a flood of public requests cannot take
their slots; they are not rate limited (Telegram paces itself and the secret token is checked).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from aiohttp import web

from bot.observability import Metrics
from bot.services.capacity import ClientRateLimiter, RateDecision
from bot.web.responses import ApiError

#: Probes and scrapes answer even when the app refuses everything else (a crowded process is not a dead one).
UNGUARDED_PATHS = frozenset({"/healthz", "/metrics"})
#: Seconds a refused client is asked to wait: long enough for a queue to drain, short for a person.
RETRY_AFTER_S = 1
#: New requests one turn of the event loop passes to the app (about 20 ms of searches); the rest of the
#: turn's new public requests are refused as they are read. More admits more per turn and makes each turn,
#: so each answer, later (bench/README-overload.md).
MAX_NEW_PER_TURN = 64


class Overloaded(ApiError):
    status = 503
    code = "overloaded"

    def __init__(self, message: str = "the server is busy; retry after the number of seconds in Retry-After"):
        super().__init__(message)
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


class DatabaseBusy(Overloaded):
    code = "database_busy"

    def __init__(self) -> None:
        super().__init__("the database is busy; retry after the number of seconds in Retry-After")


class BodyTimeout(ApiError):
    """The request's body did not arrive within `HTTP_BODY_TIMEOUT` of its headers: answered, then the
    connection is closed (the rest of the body is not waited for)."""

    status = 408
    code = "body_timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body did not arrive within {seconds:g} seconds")
        self.headers = {"Connection": "close"}


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, decision: RateDecision) -> None:
        super().__init__("too many requests from this client; retry after the seconds in Retry-After")
        retry_after = max(1, math.ceil(decision.retry_after_s))
        self.headers = {"Retry-After": str(retry_after), **rate_headers(decision)}


def rate_headers(decision: RateDecision) -> dict[str, str]:
    """The `RateLimit-*` fields (IETF httpapi draft, the three-header form most clients read)."""
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_s)),
    }


@dataclass(slots=True)
class Lane:
    """A budget of requests in flight (entered the app and not yet answered)."""

    name: str
    limit: int
    in_flight: int = 0


Network = IPv4Network | IPv6Network


def trusted_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ip_network(value, strict=False) for value in values)


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The address a request comes from. `X-Forwarded-For` is read only when the peer is a trusted proxy,
    from the right: the first address that is not a trusted proxy is the client (anything left of it was
    written by the client and proves nothing)."""
    peer = request.remote or ""
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = request.headers.getall("X-Forwarded-For", ())
    hops = [hop.strip() for header in forwarded for hop in header.split(",")]
    for hop in reversed(hops):
        if not hop:
            continue
        try:
            address = ip_address(hop)
        except ValueError:
            return peer  # a proxy of ours never writes garbage: distrust the whole header
        if not any(address in network for network in trusted):
            return str(address)
    return peer


def counted_at_read(request: web.BaseRequest) -> bool:
    """Whether `request` took its slot of the turn as its connection read it (bot/web/server.py), once:
    the mark is cleared, so that the next request on the connection is counted on its own."""
    protocol = request.protocol
    if getattr(protocol, "counted", False):
        protocol.counted = False  # type: ignore[attr-defined]
        return True
    return False


def _is_trusted(peer: str, trusted: tuple[Network, ...]) -> bool:
    try:
        address = ip_address(peer)
    except ValueError:  # a Unix socket, or no peer at all
        return False
    return any(address in network for network in trusted)


CONSOLE_PREFIX = "/console"


def is_console_path(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


@dataclass(slots=True)
class Admission:
    """The lanes of one app, the loop's lag and the client limiter, as the edge middleware uses them."""

    public: Lane
    bot: Lane
    #: The staff console's lane (`/console`): apart from the public API's, so that a flood of riders'
    #: requests cannot lock the staff out, and bounded on its own.
    console: Lane | None = None
    max_new_per_turn: int = MAX_NEW_PER_TURN
    limiter: ClientRateLimiter | None = None
    trusted: tuple[Network, ...] = ()
    bot_paths: frozenset[str] = frozenset()
    metrics: Metrics | None = None
    #: New requests read (or, not counted then, entering the app) in this turn of the loop, and whether
    #: the turn's reset is scheduled.
    _taken: int = 0
    _turn_open: bool = False
    #: Requests refused as they were read in this turn, counted into the metrics once the turn ends.
    refused_as_read: int = 0

    def take_turn_slot(self) -> bool:
        """Count one new request read (or entering the app) in this turn of the loop; False once the
        turn's budget is spent."""
        if not self._turn_open:
            self._turn_open = True
            # Runs after every read of this turn: the next turn starts with a full budget.
            asyncio.get_running_loop().call_soon(self._close_turn)
        self._taken += 1
        return self._taken <= self.max_new_per_turn

    def _close_turn(self) -> None:
        self._turn_open = False
        self._taken = 0
        if self.refused_as_read:
            if self.metrics is not None:
                self.metrics.refused(Overloaded.code, self.refused_as_read)
                self.metrics.http_answer("unrouted", Overloaded.status, self.refused_as_read)
            self.refused_as_read = 0

    def guards(self, path: str) -> bool:
        """Whether requests to `path` may be refused as they are read, for the public turn's budget
        (probes, scrapes, Telegram's and the console's never are: they have lanes of their own)."""
        return (
            path not in UNGUARDED_PATHS
            and path not in self.bot_paths
            and not (self.console is not None and is_console_path(path))
        )

    def lane_of(self, path: str) -> Lane:
        if path in self.bot_paths:
            return self.bot
        if self.console is not None and is_console_path(path):
            return self.console
        return self.public

    def admit(self, lane: Lane, counted: bool = False) -> None:
        """Take a slot of `lane` or raise `Overloaded` (the caller gives it back: `lane.in_flight -= 1`).
        A public request not `counted` as it was read takes its slot of the turn now: pipelined requests,
        and one that arrives while its connection is still finishing the answer before (a client that
        resends at once, under a flood), which the connection hands to aiohttp unchecked."""
        if lane.in_flight >= lane.limit:
            raise Overloaded()
        if lane is self.public and not counted and not self.take_turn_slot():
            raise Overloaded()
        lane.in_flight += 1
