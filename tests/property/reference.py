"""A small, independent reference implementation of the gateway's release rules.

Nothing here imports `gateway` or `resolvers`: the rules are re-stated from the
README ("The rules") and `schema.graphql`, the values from the simulators'
population records (`connectors.simulators.records`: what each system holds),
and the GraphQL execution semantics (field collection with fragments and
`@skip`/`@include`, response-key merging, null propagation) are implemented
here over the AST of `tests.property.documents`.

The rules, as implemented below:

- Scopes: identity releases nhsNumber, name, dateOfBirth, gender, shielded,
  sources (and findChildren); contact: address, carers (and each carer's
  address); education: education; health: primaryCare; services: services
  (non-sensitive) and each service's contact; sensitive: sensitive services
  that have recorded consent; shielded: location fields of a shielded child;
  protection: protection (a location field; SAFEGUARDING, HEALTH_CARE and
  SOCIAL_CARE only), stated by the council.
  `Child.id` and `__typename` need nothing.
- Location fields (README "Shielding"): address, carers IN FULL (a carer's
  name, relationship or phone leads to the child as surely as an address),
  each carer's address, education, primaryCare, each service's contact.
- A scope counts only if held AND permitted by the purpose: SAFEGUARDING and
  HEALTH_CARE permit all; EARLY_HELP and SOCIAL_CARE all but sensitive;
  EDUCATION and YOUTH_JUSTICE all but health and sensitive.
- `child` needs one of identity/contact/education/health/services granted,
  else null + FORBIDDEN (checked first, before the child is looked up).
- A withheld field is null with FORBIDDEN (scope) before SHIELDED (location
  field of a shielded child, unless shielded is granted AND the caseReference
  is non-blank). A withheld non-null field nulls its parent (null propagation).
- Sensitive services are absent unless consent is recorded and sensitive is
  granted; the others keep their order.
- 18+ (today in England) without retention consent: exactly an unknown child
  (child: null + NOT_FOUND; not in findChildren).
- Values: every system answers; identity fields from the first of gp,
  school, council that states them; practice from GP; school and carers from
  the school; shielding, retention and services from the council.
- `accessReport` (README "Who looked at my child?", `report_entries` below):
  the child's releases newest first, neither refusals, empty releases nor
  reads of the report; a SAFEGUARDING release younger than 183 days is left
  out for `subject.self` (the limit counting only what is shown) and marked
  for `audit.read`, who alone may ask for the marks (else FORBIDDEN).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.property.documents import (
    SCHEMA,
    Document,
    EnumValue,
    Field,
    FragmentSpread,
    IdOf,
    InlineFragment,
    Root,
    SearchOf,
    Selection,
    Value,
    Var,
    field_type,
    is_list,
    is_non_null,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from connectors.simulators.records import Child as Record
    from connectors.simulators.records import Place

IDENTITY = "child.identity.read"
CONTACT = "child.contact.read"
EDUCATION = "child.education.read"
HEALTH = "child.health.read"
SERVICES = "child.services.read"
SENSITIVE = "child.sensitive.read"
SHIELDED = "child.shielded.read"
PROTECTION = "child.protection.read"
ALL_SCOPES = (IDENTITY, CONTACT, EDUCATION, HEALTH, SERVICES, SENSITIVE, SHIELDED, PROTECTION)
CHILD_SCOPES = (IDENTITY, CONTACT, EDUCATION, HEALTH, SERVICES)

_ALL = frozenset(ALL_SCOPES)
PERMITTED: dict[str, frozenset[str]] = {
    "SAFEGUARDING": _ALL,
    "HEALTH_CARE": _ALL,
    "EARLY_HELP": _ALL - {SENSITIVE, PROTECTION},
    "SOCIAL_CARE": _ALL - {SENSITIVE},
    "EDUCATION": _ALL - {HEALTH, SENSITIVE, PROTECTION},
    "YOUTH_JUSTICE": _ALL - {HEALTH, SENSITIVE, PROTECTION},
}


@dataclass(frozen=True)
class Rule:
    scope: str
    location: bool = False


# (type, field) -> rule; fields not listed are released with their parent.
RULES: dict[tuple[str, str], Rule] = {
    ("Child", "nhsNumber"): Rule(IDENTITY),
    ("Child", "name"): Rule(IDENTITY),
    ("Child", "dateOfBirth"): Rule(IDENTITY),
    ("Child", "gender"): Rule(IDENTITY),
    ("Child", "shielded"): Rule(IDENTITY),
    ("Child", "sources"): Rule(IDENTITY),
    ("Child", "provenance"): Rule(IDENTITY),
    ("Child", "address"): Rule(CONTACT, location=True),
    ("Child", "carers"): Rule(CONTACT, location=True),
    ("Child", "education"): Rule(EDUCATION, location=True),
    ("Child", "primaryCare"): Rule(HEALTH, location=True),
    ("Child", "services"): Rule(SERVICES),
    ("Child", "protection"): Rule(PROTECTION, location=True),
    ("Carer", "address"): Rule(CONTACT, location=True),
    ("Service", "contact"): Rule(SERVICES, location=True),
}
SYSTEMS = ("gp", "school", "council", "youth_justice")
# README (merging): single values from the first system in order, lists the union of all
# systems' items (here each list has one system); provenance lists released fields only.
PROVENANCE_ORDER = ("name", "dateOfBirth", "gender", "address", "education", "primaryCare",
                    "protection", "carers", "services")
ADULT = 18


@dataclass(frozen=True)
class Access:
    """The caller's scopes, the purpose and the case reference of one root field."""

    scopes: frozenset[str]
    purpose: str
    case_reference: str | None

    def grants(self, scope: str) -> bool:
        return scope in self.scopes and scope in PERMITTED[self.purpose]

    @property
    def may_reveal_shielded(self) -> bool:
        return self.grants(SHIELDED) and bool((self.case_reference or "").strip())

    def withheld(self, rule: Rule | None, shielded: bool) -> str | None:
        """FORBIDDEN, SHIELDED or None (released), in that order of precedence."""
        if rule is None:
            return None
        if not self.grants(rule.scope):
            return "FORBIDDEN"
        if rule.location and shielded and not self.may_reveal_shielded:
            return "SHIELDED"
        return None

    @property
    def may_read_child(self) -> bool:
        return any(self.grants(s) for s in CHILD_SCOPES)


# ------------------------------------------------------ what the systems know


def _place(place: Place) -> dict[str, Any]:
    return {"lines": [*place.lines, place.town], "postcode": place.postcode}


def _organisation(code: str, name: str, phone: str, address: Place) -> dict[str, Any]:
    return {"name": name, "code": code, "phone": phone, "address": _place(address)}


def system_view(child: Record, system: str) -> dict[str, Any] | None:
    """What one system states about `child` (None: it does not know the child)."""
    name = {"given": list(child.given), "family": child.family}
    born = child.date_of_birth.isoformat()
    if system == "gp":
        if child.practice is None:
            return None
        p = child.practice
        return {"name": name, "dateOfBirth": born, "gender": child.gender,
                "address": _place(child.home),
                "primaryCare": {"practice": _organisation(p.code, p.name, p.phone, p.address)}}
    if system == "school":
        if child.school is None:
            return None
        s = child.school
        carers = [{"name": {"given": [c.given], "family": c.family},
                   "relationship": c.relationship, "phone": c.phone,
                   "address": _place(c.address)} for c in child.carers]
        return {"name": name, "dateOfBirth": born, "gender": child.gender,
                "education": {"school": _organisation(s.urn, s.name, s.phone, s.address)},
                "carers": carers}
    if system == "youth_justice":
        record = child.youth_justice
        if record is None:
            return None
        orders = [({"kind": o.kind, "name": o.name, "sensitive": o.sensitive,
                    "contact": o.contact}, o.consent_recorded) for o in record.orders]
        return {"name": name, "dateOfBirth": born, "services": orders,
                "shielded": record.restricted}
    if child.council is None:
        return None
    council = child.council
    services = [({"kind": s.kind, "name": s.name, "sensitive": s.sensitive,
                  "contact": s.contact}, s.consent_recorded) for s in council.involvements]
    status = child.protection
    protection = {"childProtectionPlan": bool(status and status.child_protection_plan),
                  "lookedAfter": bool(status and status.looked_after),
                  "responsibleAuthority": status.responsible_authority if status else None}
    return {"name": name, "dateOfBirth": born, "address": _place(child.home),
            "services": services, "shielded": council.shielded,
            "retention": council.retention_consent, "protection": protection}


@dataclass(frozen=True)
class Known:
    """What the gateway can learn about one child with every system answering."""

    nhs_number: str
    values: dict[str, Any]   # merged, first system in order gp, school, council
    shielded: bool
    retention: bool
    services: list[tuple[dict[str, Any], bool]] | None  # (service with source, consent)
    stated_by: dict[str, str]  # field -> the first system in order stating it

    def servable(self, today: dt.date) -> bool:
        if self.retention:
            return True
        born = dt.date.fromisoformat(self.values["dateOfBirth"])
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        return age < ADULT

    def cacheable(self, today: dt.date) -> bool:
        """README: answers about a shielded child (or one not served) are never cached."""
        return not self.shielded and self.servable(today)


def known(child: Record) -> Known | None:
    named = [(s, v) for s, v in ((s, system_view(child, s)) for s in SYSTEMS) if v is not None]
    if not named:
        return None
    views = [v for _, v in named]
    merged: dict[str, Any] = {}
    stated_by: dict[str, str] = {}
    for name in PROVENANCE_ORDER:
        stating = [(s, v[name]) for s, v in named if v.get(name) is not None]
        merged[name] = stating[0][1] if stating else None
        if stating:
            stated_by[name] = stating[0][0]
    # README (merging): services are the union of every system's, each keeping its source
    # (the systems here never state the same service twice).
    services = None
    if any(v.get("services") is not None for v in views):
        services = [({**item, "source": s}, consent) for s, v in named
                    for item, consent in v.get("services") or ()]
    return Known(child.nhs_number, merged, any(v.get("shielded") for v in views),
                 any(v.get("retention") for v in views), services, stated_by)


def visible_services(k: Known, access: Access) -> list[dict[str, Any]] | None:
    if k.services is None:
        return None
    sensitive_ok = access.grants(SENSITIVE)
    return [s for s, consent in k.services if not s["sensitive"] or (sensitive_ok and consent)]


def leaf_strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(leaf_strings(v) for v in value.values()))
    if isinstance(value, list | tuple):
        return set().union(*(leaf_strings(v) for v in value))
    return set()


def personal_strings(child: Record) -> set[str]:
    """Every value any system holds about the child, as text (plus spaceless postcodes)."""
    values = {child.nhs_number}
    for system in SYSTEMS:
        view = system_view(child, system)
        if view is not None:
            # The responsible authority names a council, as connector names do: not personal.
            values |= leaf_strings({k: v for k, v in view.items()
                                    if k not in ("services", "protection")})
            values |= leaf_strings([s for s, _ in view.get("services", [])])
    values |= {"".join(v.split()) for v in values if _looks_like_postcode(v)}
    return values


def _looks_like_postcode(value: str) -> bool:
    parts = value.split()
    return len(parts) == 2 and value.isupper() and 5 <= len(value) <= 8


# ------------------------------------------------------------------ execution


@dataclass(frozen=True)
class FromCache:
    """`SourceStatus.fromCache`: false on a cold cache, else true iff the child is cacheable."""

    cacheable: bool


@dataclass
class ExpectedError:
    path: tuple[str | int, ...]
    code: str
    scope: str | None = None   # the scope a FORBIDDEN field error names
    optional: bool = False     # inside a subtree nulled by propagation: may be left out


@dataclass
class Expected:
    """The reference's answer: `data` and the errors (see `check_errors`)."""

    data: Any
    errors: list[ExpectedError] = field(default_factory=list)
    # one group per subtree nulled by propagation: at least one of its triggers is reported
    propagated: list[list[ExpectedError]] = field(default_factory=list)


class _NullPropagationError(Exception):
    """A non-null position got null: the nearest nullable position above becomes null."""

    def __init__(self, triggers: list[ExpectedError]) -> None:
        super().__init__()
        self.triggers = triggers


@dataclass(frozen=True)
class _Object:
    type: str
    values: dict[str, Any]
    access: Access | None = None
    shielded: bool = False


@dataclass
class World:
    """What the reference knows of the running system: records, ids, today."""

    records: dict[str, Record]          # fixture -> record
    population: list[Record]            # everyone, for findChildren by demographics
    id_for: Callable[[str], str]        # NHS number -> opaque id for our client
    today: dt.date
    max_children_per_request: int = 10
    max_matches: int = 5


class Reference:
    """Executes one `Document` for a caller with `scopes` against `world`."""

    def __init__(self, world: World, document: Document, scopes: frozenset[str],
                 searches: dict[SearchOf, dict[str, str]] | None = None) -> None:
        self.world = world
        self.document = document
        self.scopes = scopes
        self.searches = searches or {}
        self.errors: list[ExpectedError] = []
        self.propagated: list[list[ExpectedError]] = []

    # --- values of the document

    def value(self, value: Value) -> Any:
        if isinstance(value, Var):
            return self.value(self.document.variable(value.name))
        if isinstance(value, EnumValue):
            return value.name
        return value

    def included(self, selection: Field | InlineFragment | FragmentSpread | Root) -> bool:
        for directive in selection.directives:
            condition = self.value(directive.condition)
            assert isinstance(condition, bool)
            if directive.name == "skip" and condition:
                return False
            if directive.name == "include" and not condition:
                return False
        return True

    def collect(self, type_name: str, selections: list[Selection],
                grouped: dict[str, list[Field]] | None = None,
                visited: set[str] | None = None) -> dict[str, list[Field]]:
        """GraphQL's CollectFields: response key -> fields, in first-seen order."""
        grouped = {} if grouped is None else grouped
        visited = set() if visited is None else visited
        for selection in selections:
            if not self.included(selection):
                continue
            if isinstance(selection, Field):
                grouped.setdefault(selection.key, []).append(selection)
            elif isinstance(selection, InlineFragment):
                if selection.type_condition in (None, type_name):
                    self.collect(type_name, list(selection.selections), grouped, visited)
            else:
                if selection.name in visited:
                    continue
                visited.add(selection.name)
                fragment = self.document.fragment(selection.name)
                if fragment.type_condition == type_name:
                    self.collect(type_name, list(fragment.selections), grouped, visited)
        return grouped

    # --- completion

    def error(self, path: tuple[str | int, ...], code: str, scope: str | None = None
              ) -> ExpectedError:
        error = ExpectedError(path, code, scope)
        self.errors.append(error)
        return error

    def nullable(self, type_: Any, produce: Any) -> Any:
        """Run `produce` at a position of `type_`; a nullable position absorbs propagation."""
        if is_non_null(type_):
            return produce()
        first_error, first_group = len(self.errors), len(self.propagated)
        try:
            return produce()
        except _NullPropagationError as propagation:
            for error in self.errors[first_error:]:
                error.optional = True
            del self.propagated[first_group:]
            self.propagated.append(propagation.triggers)
            return None

    def complete(self, type_: Any, value: Any, fields: list[Field],
                 path: tuple[str | int, ...], parent: _Object) -> Any:
        if is_non_null(type_):
            result = self.complete(type_.of_type, value, fields, path, parent)
            assert result is not None, f"reference: no value for non-null {path}"
            return result
        if value is None:
            return None
        if is_list(type_):
            return [self.nullable(type_.of_type, lambda i=i, item=item: self.complete(
                        type_.of_type, item, fields, (*path, i), parent))
                    for i, item in enumerate(value)]
        sub = [s for f in fields for s in (f.selections or ())]
        if not sub:
            return value
        named = type_.name
        return self.complete_object(
            _Object(named, value, parent.access, parent.shielded), sub, path)

    def complete_object(self, obj: _Object, selections: list[Selection],
                        path: tuple[str | int, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        triggers: list[ExpectedError] = []
        for key, fields in self.collect(obj.type, selections).items():
            try:
                result[key] = self.resolve(obj, key, fields, (*path, key))
            except _NullPropagationError as propagation:
                triggers.extend(propagation.triggers)
        if triggers:
            raise _NullPropagationError(triggers)
        return result

    def resolve(self, obj: _Object, key: str, fields: list[Field],
                path: tuple[str | int, ...]) -> Any:
        name = fields[0].name
        if name == "__typename":
            return obj.type
        type_ = field_type(obj.type, name)

        def produce() -> Any:
            rule = RULES.get((obj.type, name))
            code = None if obj.access is None else obj.access.withheld(rule, obj.shielded)
            if code is not None:
                error = self.error(path, code, rule.scope if code == "FORBIDDEN" else None)
                if is_non_null(type_):
                    raise _NullPropagationError([error])
                return None
            return self.complete(type_, obj.values.get(name), fields, path, obj)

        return self.nullable(type_, produce)

    # --- roots

    def root_access(self, root: Root) -> Access:
        case = self.value(root.argument("caseReference"))
        return Access(self.scopes, self.value(root.argument("purpose")), case)

    def child_values(self, k: Known, access: Access, child_id: str) -> dict[str, Any]:
        values = dict(k.values)
        values["id"] = child_id
        values["nhsNumber"] = k.nhs_number
        values["shielded"] = k.shielded
        visible = visible_services(k, access)
        values["services"] = None if visible is None else [
            {**s, "sources": [s["source"]]} for s in visible]
        carers = k.values["carers"]
        values["carers"] = None if carers is None else [
            {**c, "sources": [k.stated_by["carers"]]} for c in carers]
        values["provenance"] = [
            {"field": name, "disagreeing": [], "unavailable": [],
             "sources": list(dict.fromkeys(s["source"] for s in visible or ()))
             if name == "services" else [k.stated_by[name]]}
            for name in PROVENANCE_ORDER
            if name in k.stated_by
            and access.withheld(RULES[("Child", name)], k.shielded) is None]
        values["sources"] = [{"connector": s, "status": "ok",
                              "fromCache": FromCache(k.cacheable(self.world.today))}
                             for s in SYSTEMS]
        return values

    def child(self, root: Root, fields: list[Field], path: tuple[str, ...]) -> Any:
        access = self.root_access(root)
        id_value = self.value(root.argument("id"))
        assert isinstance(id_value, IdOf)
        record = self.world.records[id_value.fixture]
        child_id = self.world.id_for(record.nhs_number)
        if not access.may_read_child:
            self.error(path, "FORBIDDEN")
            return None
        k = known(record)
        if k is None or not k.servable(self.world.today):
            self.error(path, "NOT_FOUND")
            return None
        obj = _Object("Child", self.child_values(k, access, child_id), access, k.shielded)
        return self.complete_object(obj, [s for f in fields for s in f.selections or ()], path)

    def find_children(self, root: Root, fields: list[Field], path: tuple[str, ...]) -> Any:
        access = self.root_access(root)
        if not access.grants(IDENTITY):
            raise _NullPropagationError([self.error(path, "FORBIDDEN", IDENTITY)])
        search = self.value(root.argument("search"))
        criteria = self.searches[search] if isinstance(search, SearchOf) else search
        matches = []
        for record in self.candidates(criteria):
            k = known(record)
            if k is None or not k.servable(self.world.today):
                continue
            if not self.visible_match(criteria, k, access):
                continue
            matches.append({"id": self.world.id_for(record.nhs_number), "name": k.values["name"],
                            "dateOfBirth": k.values["dateOfBirth"]})
        matches = matches[:self.world.max_matches]
        type_ = SCHEMA.query_type.fields["findChildren"].type  # type: ignore[union-attr]
        return self.complete(type_, matches, fields, path, _Object("Query", {}))

    def candidates(self, criteria: dict[str, str]) -> list[Record]:
        """Children any system matches exactly (README "Searching"), by NHS number order."""
        if "nhsNumber" in criteria:
            nhs = "".join(criteria["nhsNumber"].split())
            return [r for r in self.world.population if r.nhs_number == nhs]

        def norm(text: str) -> str:
            return " ".join(text.split()).casefold()

        family, born = norm(criteria["familyName"]), criteria["dateOfBirth"]
        given = norm(criteria["givenName"]) if "givenName" in criteria else None
        postcode = ("".join(criteria["postcode"].split()).upper()
                    if "postcode" in criteria else None)
        found = [r for r in self.world.population
                 if norm(r.family) == family and r.date_of_birth.isoformat() == born
                 and (given is None or given in {norm(g) for g in r.given})
                 and (postcode is None or "".join(r.home.postcode.split()).upper() == postcode)
                 and known(r) is not None]
        found.sort(key=lambda r: r.nhs_number)
        return found[:self.world.max_children_per_request]

    @staticmethod
    def visible_match(criteria: dict[str, str], k: Known, access: Access) -> bool:
        """A search never matches on a value the caller may not see: a postcode the
        caller may not see (address withheld) is not compared, so a search by
        postcode alone does not find the child."""
        if "postcode" not in criteria:
            return True
        address_withheld = access.withheld(RULES["Child", "address"], k.shielded) is not None
        return not address_withheld or "givenName" in criteria

    def run(self) -> Expected:
        data: dict[str, Any] = {}
        grouped: dict[str, list[Root]] = {}
        for root in self.document.roots:
            if self.included(root):
                grouped.setdefault(root.key, []).append(root)
        nulled: list[ExpectedError] = []
        for key, roots in grouped.items():
            root = roots[0]
            fields = [Field(r.field, r.alias, r.selections) for r in roots]
            path = (key,)
            try:
                if root.field == "child":
                    data[key] = self.nullable(
                        None, lambda root=root, fields=fields, path=path:
                        self.child(root, fields, path))
                else:
                    data[key] = self.find_children(root, fields, path)
            except _NullPropagationError as propagation:
                nulled.extend(propagation.triggers)
        if nulled:
            for error in self.errors:
                error.optional = True
            self.propagated = [nulled]
            return Expected(None, self.errors, self.propagated)
        return Expected(data, self.errors, self.propagated)


def expect(world: World, document: Document, scopes: frozenset[str],
           searches: dict[SearchOf, dict[str, str]] | None = None) -> Expected:
    return Reference(world, document, scopes, searches).run()


# ------------------------------------------------------------------ comparing


def _path(error: dict[str, Any]) -> tuple[str | int, ...]:
    return tuple(error["path"])


def check_errors(actual: list[dict[str, Any]], expected: Expected) -> None:
    """Errors as (path, code): exactly the reference's; where a subtree was nulled by
    propagation, those inside it may be left out but one of its triggers must be there."""
    for error in actual:
        assert error.get("path"), f"an error without a path (a request error?): {error}"
        assert error.get("extensions", {}).get("code"), f"an error without a code: {error}"
    got = Counter((_path(e), e["extensions"]["code"]) for e in actual)
    everything = Counter((e.path, e.code) for e in expected.errors)
    required = Counter((e.path, e.code) for e in expected.errors if not e.optional)
    assert all(got[k] <= everything[k] for k in got), (
        f"unexpected errors {sorted(got - everything, key=str)}; expected {everything}")
    assert all(got[k] >= n for k, n in required.items()), (
        f"missing errors {sorted(required - got, key=str)}; got {got}")
    for group in expected.propagated:
        assert any(got[(e.path, e.code)] for e in group), (
            f"none of the errors that null the subtree was reported: {group}")
    scopes = {(e.path, e.code): e.scope for e in expected.errors if e.scope}
    for error in actual:
        named = scopes.get((_path(error), error["extensions"]["code"]))
        if named is not None:
            assert error["extensions"].get("scope") == named, error


def check_data(actual: Any, expected: Any, *, warm: bool, path: str = "data") -> None:
    """`actual == expected`, where a `FromCache` marker demands a boolean: false on a cold
    cache, and on a warm one true iff the child may be cached."""
    if isinstance(expected, FromCache):
        assert isinstance(actual, bool), path
        assert actual is (warm and expected.cacheable), (path, actual, expected, warm)
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), (path, actual, expected)
        assert list(actual) == list(expected), (path, list(actual), list(expected))
        for key, value in expected.items():
            check_data(actual[key], value, warm=warm, path=f"{path}.{key}")
        return
    if isinstance(expected, list):
        assert isinstance(actual, list), (path, actual, expected)
        assert len(actual) == len(expected), (path, actual, expected)
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            check_data(a, e, warm=warm, path=f"{path}.{index}")
        return
    assert type(actual) is type(expected), (path, actual, expected)
    assert actual == expected, (path, actual, expected)



# ------------------------------------------------------------------ accessReport

# README "Who looked at my child?": withheld from the subject, by default.
REPORT_WITHHELD_PURPOSES = frozenset({"SAFEGUARDING"})
REPORT_WITHHOLD_PERIOD = dt.timedelta(days=183)
# README "The policy table": the group of fields each released field belongs to.
REPORT_GROUPS = {"Child.name": "identity", "Child.nhsNumber": "identity",
                 "Child.address": "contact", "Child.carers": "contact",
                 "Child.education": "education", "Child.primaryCare": "health",
                 "Child.services": "services", "Child.protection": "protection"}
REPORT_GROUP_ORDER = ("identity", "contact", "education", "health", "services", "protection")


@dataclass(frozen=True)
class Logged:
    """One event of a child's audit log, as the property writes it (oldest first)."""

    at: dt.datetime
    action: str
    outcome: str
    purpose: str | None
    organisation: str | None
    released: tuple[str, ...]


@dataclass(frozen=True)
class ReportEntry:
    """What the reference expects of one `AccessRecord`."""

    at: dt.datetime
    organisation: str | None
    purpose: str | None
    fields: list[str]
    withheld: str | None


def report_withheld(entry: Logged, now: dt.datetime) -> str | None:
    """Why the subject is not shown this release (None: shown)."""
    if entry.purpose in REPORT_WITHHELD_PURPOSES and now - entry.at < REPORT_WITHHOLD_PERIOD:
        return f"{entry.purpose} within {REPORT_WITHHOLD_PERIOD.days} days"
    return None


def report_entries(log: list[Logged], *, subject: bool, now: dt.datetime,
                   limit: int) -> list[ReportEntry]:
    """The report a subject (or the DPO) must get for `log`: newest first, at most `limit`."""
    entries = []
    for entry in reversed(log):
        if (entry.outcome != "released" or not entry.released
                or entry.action == "access_report.read"):
            continue
        withheld = report_withheld(entry, now)
        if subject and withheld is not None:
            continue
        groups = {REPORT_GROUPS[key] for key in entry.released if key in REPORT_GROUPS}
        entries.append(ReportEntry(entry.at, entry.organisation, entry.purpose,
                                   [g for g in REPORT_GROUP_ORDER if g in groups], withheld))
    return entries[:limit]
