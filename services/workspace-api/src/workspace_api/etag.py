"""ETags derived from an item's `updatedAt` (microseconds since the epoch), and If-Match parsing.

Every update moves `updated_at` forward by at least one microsecond (see items/service.py), so
two versions of an item never share an ETag.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
# ASCII digits only: str.isdigit() is also true for "²" or "١", which int() then refuses or reads.
_TAG = re.compile(r"[0-9]{1,18}")


def etag_for(updated_at: datetime) -> str:
    return f'"{(updated_at - EPOCH) // _MICROSECOND}"'


class IfMatch:
    """A parsed If-Match header: `any` for `*`, else the versions it accepts.

    A tag that is not one of ours matches nothing (the write is refused with 412). Weak tags
    (`W/"…"`) are compared by their value: proxies may weaken an ETag they recompress.
    """

    def __init__(self, any_version: bool, versions: list[datetime]) -> None:
        self.any = any_version
        self.versions = versions

    @classmethod
    def parse(cls, header: str | None) -> "IfMatch | None":
        if header is None or not header.strip():
            return None
        if header.strip() == "*":
            return cls(True, [])
        versions = []
        for tag in header.split(","):
            tag = tag.strip().removeprefix("W/").strip('"')
            if _TAG.fullmatch(tag):
                try:
                    versions.append(EPOCH + int(tag) * _MICROSECOND)
                except OverflowError:
                    continue
        return cls(False, versions)

    @property
    def sql_versions(self) -> list[datetime] | None:
        """The `updated_at` values a conditional statement accepts (None: no condition)."""
        return None if self.any else self.versions
