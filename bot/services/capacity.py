"""What the edges need to refuse work they cannot do in time, from the layers below them.

A database session that waits `DB_POOL_TIMEOUT` for a pooled connection in vain raises `DatabaseBusy`
(from any service); per-client limits answer `RateDecision`s (`ClientRateLimiter`, built by the composition
root: in Redis when there is one). The web app turns them into 503 and 429 answers (bot/web/admission.py).
"""

from __future__ import annotations

from storage.db import PoolTimeout as DatabaseBusy
from storage.ratelimit import ClientRateLimiter, RateDecision

__all__ = ["ClientRateLimiter", "DatabaseBusy", "RateDecision"]
