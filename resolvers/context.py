"""The typed, frozen per-request context and the app-lifetime services it points to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from gateway.errors import QueryTooComplexError

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping, Sequence

    from strawberry.dataloader import DataLoader

    from gateway.audit import AuditEvent
    from gateway.auth.caller import Caller
    from gateway.ids import ChildIdCodec
    from gateway.policy import Scope
    from gateway.sources import SourceBundle, Sources
    from resolvers.accesses import ChildAccess
    from resolvers.assembly import SourceTraits

__all__ = ["AccessHistory", "BudgetCharger", "GatewayServices", "RequestContext"]


class BudgetCharger(Protocol):
    """Counts a looked-up child against the caller's harvesting budgets."""

    async def __call__(self, caller: Caller, nhs_number: str, request_id: str) -> None:
        """Raises AccessBudgetExceededError when this child would exceed a budget."""
        ...


class AccessHistory(Protocol):
    """The audit log's releases of one child's data, newest first."""

    async def __call__(self, nhs_number: str, limit: int) -> Sequence[AuditEvent]: ...


@dataclass(frozen=True, slots=True)
class GatewayServices:
    """Long-lived collaborators, owned by the app's lifespan."""

    sources: Sources
    traits: Mapping[str, SourceTraits]
    ids: ChildIdCodec
    today: Callable[[], dt.date]
    max_children_per_request: int
    purposes: Mapping[str, frozenset[Scope]]
    charge: BudgetCharger
    access_history: AccessHistory


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Everything a resolver may use for one request; built per request, never shared."""

    caller: Caller
    services: GatewayServices
    loader: DataLoader[str, SourceBundle]
    request_id: str
    accesses: list[ChildAccess] = field(default_factory=list)
    _children: set[str] = field(default_factory=set)

    def note(self, access: ChildAccess) -> ChildAccess:
        """Keep `access` for this request's audit events; returns it for filling in."""
        self.accesses.append(access)
        return access

    async def load(self, nhs_number: str) -> SourceBundle:
        """The child's bundle, fetched at most once per request however often asked for."""
        if nhs_number not in self._children:
            if len(self._children) >= self.services.max_children_per_request:
                raise QueryTooComplexError(
                    f"A request may look up at most {self.services.max_children_per_request}"
                    " children.")
            self._children.add(nhs_number)
        return await self.loader.load(nhs_number)
