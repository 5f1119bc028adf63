"""What one request did with each child: the raw material of its audit events.

Resolvers note every lookup here as it happens (which child, why, what was
released, what withheld and why); the HTTP layer turns the notes into audit
events and makes them durable before the response leaves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.core.facts import ProtectionStatus

__all__ = ["ChildAccess"]


@dataclass(slots=True)
class ChildAccess:
    """One lookup of one child (or of nobody, for a search that found nothing).

    Mutable on purpose: the fields of a `Child` resolve one by one, each
    adding what it released or why it was withheld.
    """

    action: str
    purpose: str | None
    case_reference: str | None
    nhs_number: str | None = None
    outcome: str = "released"
    sources: tuple[str, ...] = ()
    shielded: bool = False
    released: set[str] = field(default_factory=set)
    withheld: dict[str, str] = field(default_factory=dict)
    sensitive_released: bool = False
    protection: ProtectionStatus | None = None
    """The child's protection status as the systems state it (whether or not the caller may
    see it): a release tells the responsible authority (`notifications`)."""

    def note_released(self, key: str) -> None:
        self.released.add(key)

    def note_withheld(self, key: str, code: str) -> None:
        self.withheld[key] = code
