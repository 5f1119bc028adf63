"""The lookup pipeline's budget hook: one looked-up child charged to the caller's budgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.core.caller import Caller
    from gateway.limits.budgets import Budgets, PendingCharge

__all__ = ["ChildCharger"]


@dataclass(frozen=True, slots=True)
class ChildCharger:
    """Charges a child, by its keyed pseudonym (never its NHS number), to the caller."""

    budgets: Budgets
    pseudonymise_child: Callable[[str], str]
    """The audit log's child pseudonym, so budgets and the log name a child alike."""

    async def __call__(self, caller: Caller, nhs_number: str, request_id: str) -> None:
        """Raises AccessBudgetExceededError when this child would exceed a budget."""
        await self.budgets.charge(subject=caller.subject, organisation=caller.organisation,
                                  roles=caller.roles, child=self.pseudonymise_child(nhs_number),
                                  request_id=request_id)

    def prepare(self, caller: Caller, nhs_number: str, request_id: str) -> PendingCharge:
        """The charge `__call__` would make, to be counted with others in one round trip."""
        return self.budgets.prepare(subject=caller.subject, organisation=caller.organisation,
                                    roles=caller.roles,
                                    child=self.pseudonymise_child(nhs_number),
                                    request_id=request_id)
