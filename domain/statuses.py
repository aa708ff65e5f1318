"""The life cycles of cases, announcements and deliveries, as names.

The values are what the database stores (and what buttons and the API show), so they never change; a
`StrEnum` compares equal to its value, so rows read back as plain strings match these members.
"""

from __future__ import annotations

import enum

__all__ = ["OPEN_CASE_STATUSES", "AnnouncementStatus", "CaseStatus", "DeliveryStatus"]


class CaseStatus(enum.StrEnum):
    """A case: the reports about one problem of one station. open → approved | rejected, or needs_info
    (staff asked the reporters for details) and then approved | rejected."""

    OPEN = "open"
    NEEDS_INFO = "needs_info"
    APPROVED = "approved"
    REJECTED = "rejected"


#: Cases still waiting for a decision.
OPEN_CASE_STATUSES: tuple[CaseStatus, ...] = (CaseStatus.OPEN, CaseStatus.NEEDS_INFO)


class AnnouncementStatus(enum.StrEnum):
    """draft → scheduled | sending; sending ⇄ paused; scheduled | sending | paused → cancelled;
    sending → done."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class DeliveryStatus(enum.StrEnum):
    """One recipient of an announcement: pending → sending → sent | failed | blocked (pending again to
    retry); cancelled with its announcement; a row a crash left sending becomes uncertain."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"
    UNCERTAIN = "uncertain"
