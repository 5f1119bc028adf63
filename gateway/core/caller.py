"""The authenticated caller: what a validated access token says about who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, taken from a validated RFC 9068 access token.

    `subject` (the user) and `token_id` are kept out of the repr so that a
    caller that ends up in a log line or a traceback names nobody.
    """

    subject: str = field(repr=False)
    client_id: str
    organisation: str | None
    scopes: frozenset[str]
    amr: frozenset[str]
    expires_at: int
    token_id: str | None = field(default=None, repr=False)
    roles: frozenset[str] = frozenset()
    """The token's `roles` claim: chooses the harvesting budget."""
    subject_nhs_number: str | None = field(default=None, repr=False)
    """The `subject_nhs_number` claim of a child's or parent's own token (`subject.self`)."""
    authority: str | None = None
    """The `authority` claim (e.g. ``"council:leeds"``): the only systems whose manifests
    the caller may register, replace or remove (with the `connectors.manage` scope)."""
