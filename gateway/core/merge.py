"""Merging every system's answer about one child into the state the policy decides on (pure).

Nothing any system says is lost or silently overruled:

- a list (carers, services) is the union of every system's items,
  de-duplicated by a stated key (`SERVICE_KEY`, `CARER_KEY`), each item keeping
  the systems that state it;
- a single value (name, address, ...) comes from the first system in that
  fact's precedence list that states it (`MergeRules.authority`, then
  configuration order), and systems stating another value are named as
  disagreeing in its provenance;
- shielding fails closed: the child counts as shielded if any system says so
  or any system able to record shielding did not answer; retention consent
  holds if any system records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from gateway.core.facts import Carer, Provenance, Service, SourceFacts
from gateway.core.policy import ChildState, is_servable
from gateway.core.records import fast_init

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "CARER_KEY",
    "LIST_FACTS",
    "SERVICE_KEY",
    "SINGLE_FACTS",
    "MergeRules",
    "Merged",
    "SourceBundle",
    "SourceOutcome",
    "SourceTraits",
    "merge",
]

Status = Literal["ok", "unavailable"]
_OWN_RULES = frozenset({"nhs_number", "shielded", "retention_consent"})
LIST_FACTS = tuple(f.name for f in fields(SourceFacts) if str(f.type).startswith("tuple["))
"""Facts that are lists: merged as the union of every system's items."""
SINGLE_FACTS = tuple(f.name for f in fields(SourceFacts)
                     if f.name not in _OWN_RULES and f.name not in LIST_FACTS)
"""Facts with one value: taken from the first system in the fact's precedence list."""


def _fold(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def SERVICE_KEY(service: Service) -> tuple[str, ...]:  # noqa: N802 -- a stated constant rule
    """Two systems' services are one when kind and name agree (case and spacing aside)."""
    return (_fold(service.kind), _fold(service.name))


def CARER_KEY(carer: Carer) -> tuple[str, ...]:  # noqa: N802 -- a stated constant rule
    """Two systems' carers are one when family name, given names and relationship agree."""
    return (_fold(carer.name.family), *(_fold(g) for g in carer.name.given),
            "|", _fold(carer.relationship))


@fast_init
@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """One system's answer about one child: facts, "does not know" (None), or no answer."""

    connector: str
    status: Status
    facts: SourceFacts | None = None
    from_cache: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class SourceBundle:
    """Every configured system's outcome for one NHS number, in configuration order."""

    nhs_number: str
    outcomes: tuple[SourceOutcome, ...]


@dataclass(frozen=True, slots=True)
class SourceTraits:
    """What the merge needs to know of a system (from its manifest)."""

    provides: frozenset[str]
    can_shield: bool
    membership_sensitive: bool = False


@dataclass(frozen=True, slots=True)
class MergeRules:
    """The systems in configuration order, their traits, and each fact's precedence."""

    traits: Mapping[str, SourceTraits]
    authority: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _orders: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False,
                                                default_factory=dict)
    """Each fact's precedence, worked out on first use (merged per child per request)."""

    def precedence(self, fact: str) -> tuple[str, ...]:
        order = self._orders.get(fact)
        if order is None:
            first = self.authority.get(fact, ())
            order = (*first, *(name for name in self.traits if name not in first))
            self._orders[fact] = order
        return order


@fast_init
@dataclass(frozen=True, slots=True)
class Merged:
    """A known child (with its state), nobody knows it, or nobody could say."""

    status: Literal["known", "unknown", "unavailable"]
    state: ChildState | None = None

    def cacheable(self, today: dt.date) -> bool:
        """Whether the answers behind it may be cached, however briefly.

        Not for a child who counts as shielded (including "a system that records
        shielding did not answer"), nor for a person the gateway may not serve
        (18+ without retention consent).
        """
        state = self.state
        return state is None or (not state.shielded and is_servable(state.facts, today))


def _single(fact: str, answered: Mapping[str, SourceFacts], rules: MergeRules,
            failed: Sequence[str]) -> tuple[Any, Provenance | None]:
    order = rules.precedence(fact)
    source: str | None = None
    value: Any = None
    disagreeing: list[str] = []
    for name in order:
        facts = answered.get(name)
        if facts is None:
            continue
        stated = getattr(facts, fact)
        if stated is None:
            continue
        if source is None:
            source, value = name, stated
        elif stated != value:
            disagreeing.append(name)
    if source is None:
        return None, None
    missing = () if not failed else tuple(
        n for n in order[:order.index(source)]
        if n in failed and fact in rules.traits[n].provides)
    return value, Provenance((source,), tuple(disagreeing), missing)


def _union_services(first: Service, other: Service) -> Service:
    # The same service stated twice: sensitive if either says so, consented only if both do.
    return Service(first.kind, first.name, first.sensitive or other.sensitive,
                   first.consent_recorded and other.consent_recorded,
                   first.contact or other.contact, first.sources + other.sources)


def _union_carers(first: Carer, other: Carer) -> Carer:
    return Carer(first.name, first.relationship, first.phone or other.phone,
                 first.address or other.address, first.sources + other.sources)


def _service_of(service: Service, source: str) -> Service:
    return Service(service.kind, service.name, service.sensitive, service.consent_recorded,
                   service.contact, (source,))


def _carer_of(carer: Carer, source: str) -> Carer:
    return Carer(carer.name, carer.relationship, carer.phone, carer.address, (source,))


_LISTS: dict[str, tuple[Callable[[Any], tuple[str, ...]], Callable[[Any, Any], Any],
                        Callable[[Any, str], Any]]] = {
    "services": (SERVICE_KEY, _union_services, _service_of),
    "carers": (CARER_KEY, _union_carers, _carer_of),
}
"""Each list fact's key, how two systems' items combine, and an item as stated by one system."""


def _union(fact: str, answered: Mapping[str, SourceFacts], rules: MergeRules,
           failed: Sequence[str]) -> tuple[Any, Provenance | None]:
    key, combine, stated_by = _LISTS[fact]
    merged: dict[tuple[str, ...], Any] = {}
    stating: list[str] = []
    for name in rules.traits:
        items = None if name not in answered else getattr(answered[name], fact)
        if items is None:
            continue
        stating.append(name)
        for item in items:
            mine = stated_by(item, name)
            item_key = key(mine)
            known = merged.get(item_key)
            merged[item_key] = mine if known is None else combine(known, mine)
    missing = tuple(n for n in failed if fact in rules.traits[n].provides)
    if not stating:
        return None, None
    return tuple(merged.values()), Provenance(tuple(stating), (), missing)


def merge(bundle: SourceBundle, rules: MergeRules) -> Merged:
    """Merge one child's answers; pure, and done once per child per request."""
    answered = {o.connector: o.facts for o in bundle.outcomes if o.facts is not None}
    failed = [o.connector for o in bundle.outcomes if o.status == "unavailable"]
    if not answered:
        return Merged("unavailable" if failed else "unknown")
    values: dict[str, Any] = {}
    provenance: dict[str, Provenance] = {}
    for fact in SINGLE_FACTS:
        value, where = _single(fact, answered, rules, failed)
        if where is not None:
            values[fact], provenance[fact] = value, where
    for fact in LIST_FACTS:
        value, where = _union(fact, answered, rules, failed)
        if where is not None:
            values[fact], provenance[fact] = value, where
    facts = SourceFacts(
        bundle.nhs_number, **values,
        shielded=any(f.shielded for f in answered.values()),
        retention_consent=any(f.retention_consent for f in answered.values()))
    shielded = bool(facts.shielded) or any(rules.traits[name].can_shield for name in failed)
    from_failed = frozenset().union(*(rules.traits[name].provides for name in failed))
    unavailable = frozenset(name for name in from_failed if getattr(facts, name) is None)
    hidden = frozenset(name for name, traits in rules.traits.items()
                       if traits.membership_sensitive)
    return Merged("known", ChildState(facts, shielded, unavailable, provenance, hidden))
