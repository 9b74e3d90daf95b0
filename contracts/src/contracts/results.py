"""What the ingest API answers, single and batch (shapes of the old API, plus `status`)."""

from __future__ import annotations

from typing import Literal

from .messages import Base

IngestStatus = Literal["stored", "duplicate", "rejected"]


class IngestResult(Base):
    """One message's outcome.

    `stored`/`reason` keep the old API's shape (`{"success":true,"messageId":N,"stored":false,
    "reason":"duplicate"}`); `status` says the same in one field; `details` lists what was wrong
    with a rejected message.
    """

    success: bool
    status: IngestStatus
    stored: bool
    message_id: int | None = None
    reason: str | None = None
    details: list[str] | None = None

    @classmethod
    def stored_(cls, message_id: int) -> "IngestResult":
        return cls(success=True, status="stored", stored=True, message_id=message_id)

    @classmethod
    def duplicate(cls, message_id: int) -> "IngestResult":
        return cls(success=True, status="duplicate", stored=False, message_id=message_id, reason="duplicate")

    @classmethod
    def rejected(cls, details: list[str], message_id: int | None = None) -> "IngestResult":
        return cls(
            success=False,
            status="rejected",
            stored=False,
            message_id=message_id,
            reason="Validation failed",
            details=details,
        )

    @property
    def acknowledged(self) -> bool:
        """True when the gateway may drop its copy (the API holds the message)."""
        return self.status in ("stored", "duplicate")


class BatchResult(Base):
    """Answer of `POST /ingest/batch`: `results[i]` belongs to `messages[i]`."""

    results: list[IngestResult]
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
