"""Merging one child's per-source outcomes into the state the policy decides on (pure)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from connectors.facts import SourceFacts
from gateway.policy import ChildState, is_servable

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from gateway.sources import SourceBundle

__all__ = ["Assembled", "SourceTraits", "assemble", "cacheable"]

_MERGED = tuple(f.name for f in fields(SourceFacts) if f.name not in {
    "nhs_number", "shielded", "retention_consent"})


@dataclass(frozen=True, slots=True)
class SourceTraits:
    """What the merge needs to know of a connector."""

    provides: frozenset[str]
    can_shield: bool


@dataclass(frozen=True, slots=True)
class Assembled:
    """The outcome of assembling: a known child, nobody knows it, or nobody could say."""

    status: Literal["known", "unknown", "unavailable"]
    state: ChildState | None = None


def _merge(facts: list[SourceFacts], nhs_number: str) -> SourceFacts:
    merged: dict[str, Any] = {}
    for name in _MERGED:
        merged[name] = next((getattr(f, name) for f in facts if getattr(f, name) is not None),
                            None)
    return replace(
        SourceFacts(nhs_number), **merged,
        shielded=any(f.shielded for f in facts),
        retention_consent=any(f.retention_consent for f in facts),
    )


def assemble(bundle: SourceBundle, traits: Mapping[str, SourceTraits]) -> Assembled:
    """Merge in configuration order (first system to state a field wins).

    Shielding fails closed: a system able to record it that did not answer
    makes the child count as shielded for this request. A system that
    answered "not known" is an answer: it does not make the child shielded.
    """
    known = [o.facts for o in bundle.outcomes if o.facts is not None]
    failed = [o.connector for o in bundle.outcomes if o.status == "unavailable"]
    if not known:
        return Assembled("unavailable" if failed else "unknown")
    facts = _merge(known, bundle.nhs_number)
    shielded = bool(facts.shielded) or any(traits[name].can_shield for name in failed)
    missing_from_failed = frozenset().union(*(traits[name].provides for name in failed))
    unavailable = frozenset(name for name in missing_from_failed if getattr(facts, name) is None)
    return Assembled("known", ChildState(facts, shielded, unavailable))


def cacheable(bundle: SourceBundle, traits: Mapping[str, SourceTraits], today: dt.date) -> bool:
    """Whether a bundle's answers may be cached.

    Not for a child who counts as shielded (including "the council did not
    answer"), nor for a person the gateway may not serve (18+ without
    retention consent): their data is not kept, however briefly.
    """
    state = assemble(bundle, traits).state
    return state is None or (not state.shielded and is_servable(state.facts, today))
