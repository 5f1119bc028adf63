"""The typed, frozen per-request context: the caller and the request's lookup pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.core.records import fast_init

if TYPE_CHECKING:
    from gateway.accountability.notes import ChildAccess
    from gateway.core.caller import Caller
    from gateway.lookup.pipeline import Lookup, LookupServices

__all__ = ["RequestContext"]


@fast_init
@dataclass(frozen=True, slots=True)
class RequestContext:
    """Everything a resolver may use for one request; built per request, never shared."""

    caller: Caller
    lookup: Lookup
    request_id: str

    @property
    def services(self) -> LookupServices:
        """The lookup's services, their I/O made only once the request is admitted."""
        return self.lookup.guarded

    @property
    def accesses(self) -> list[ChildAccess]:
        """This request's audit notes, in the order they were made."""
        return self.lookup.notes

    def note(self, access: ChildAccess) -> ChildAccess:
        """Keep `access` for this request's audit events; returns it for filling in."""
        return self.lookup.note(access)
