"""Query documents over the public schema: a small AST, its rendering, and hypothesis strategies.

The AST keeps exactly what the reference (`tests.property.reference`) needs to
execute a document itself: fields with aliases and sub-selections, inline
fragments, named fragment spreads, `@skip`/`@include` with literal or variable
conditions, and root fields with their arguments. `render` turns it into
GraphQL text, and `validate_document` checks that text against `schema.graphql`
with graphql-core's standard rules (no gateway code), so every generated
document is valid GraphQL and any error the gateway reports is one of its rules.

Field types come from `schema.graphql` itself (the public contract), so a
field added there is generated here without a change.

Response keys are kept mergeable: a response key is bound to one field per
parent type for the whole document, so two selections that share a key always
select the same field (GraphQL's "fields can merge" rule).

Shape limits: some documents are made alias-heavy or padded to within three
tokens of 2,000 on either side, to check QUERY_TOO_COMPLEX. The depth limit
(8) cannot be reached: the deepest path the schema has is 5
(`child.education.school.address.lines`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    build_schema,
    get_named_type,
    parse,
    validate,
)
from hypothesis import assume
from hypothesis import strategies as st

from resolvers.cost import document_cost

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema.graphql"
SCHEMA = build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))

FIXTURES = ("ordinary", "shielded", "sensitive_consented", "sensitive_unconsented",
            "adult_no_consent", "adult_consented", "school_only")
# Drawn more often (and first, which hypothesis favours): the children and the
# purposes the rules treat specially.
WEIGHTED_FIXTURES = ("shielded", "sensitive_consented", *FIXTURES, "shielded",
                     "sensitive_unconsented", "adult_no_consent")
PURPOSES = ("SAFEGUARDING", "EARLY_HELP", "EDUCATION", "HEALTH_CARE", "SOCIAL_CARE",
            "YOUTH_JUSTICE")
DRAWN_PURPOSES = ("EDUCATION", "SAFEGUARDING", "EARLY_HELP", "HEALTH_CARE", "YOUTH_JUSTICE",
                  "SOCIAL_CARE")
assert sorted(DRAWN_PURPOSES) == sorted(PURPOSES)
CASE_REFERENCES = ("CASE-42", None, "")
MAX_ALIASES = 15  # the gateway's default [limits]
MAX_TOKENS = 2000
MAX_DEPTH = 8
MAX_DIRECTIVES = 50
MAX_COST = 1500  # resolvers/cost.py: the one limit the reference takes from the gateway
MAX_REPEATS = 20  # one response key in one selection set

# Alias names: never a field name of any type (so they cannot clash with an
# unaliased field), never a personal value (so leak checks cannot match them).
_FIELD_NAMES = frozenset(name for t in SCHEMA.type_map.values()
                         if isinstance(t, GraphQLObjectType) for name in t.fields)
ALIASES = ("a", "b", "x1", "y_2", "again", "dup", "first", "second", "other", "alt", "_k")
ROOT_ALIASES = ("kid", "record", "c2", "lookup")
assert not _FIELD_NAMES & {*ALIASES, *ROOT_ALIASES}
BOOL_VARIABLES = ("b0", "b1", "b2", "b3")
# Fields the rules treat specially for a fixture child (see `_Builder.child_root`).
_LOCATION = ("address", "carers", "education", "primaryCare", "services")
FOCUS = {"shielded": _LOCATION, "sensitive_consented": ("services",),
         "sensitive_unconsented": ("services",), "school_only": ("address", "primaryCare")}
PURPOSE_FOCUS = {"EDUCATION": ("primaryCare", "services"),
                 "YOUTH_JUSTICE": ("primaryCare", "services"),
                 "EARLY_HELP": ("services",), "SOCIAL_CARE": ("services",)}


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Var:
    """A variable reference, `$name`."""

    name: str


@dataclass(frozen=True)
class IdOf:
    """The opaque id of a fixture child, known only once the gateway runs."""

    fixture: str


@dataclass(frozen=True)
class EnumValue:
    name: str


@dataclass(frozen=True)
class SearchOf:
    """A `ChildSearch` built at run time from a fixture child's record.

    `form`: "nhs" (the NHS number, `nhs_style` "plain" or "spaced"), or
    demographics: family name + date of birth + "given", "postcode" or
    "both". `wrong_given` replaces the given name with one nobody has;
    `name_style`/`postcode_style` vary case and spacing (both are matched
    case-insensitively / ignoring spaces).
    """

    fixture: str
    form: Literal["nhs", "given", "postcode", "both"]
    nhs_style: Literal["plain", "spaced"] = "plain"
    name_style: Literal["as_is", "upper", "lower", "padded"] = "as_is"
    postcode_style: Literal["as_is", "lower", "no_space"] = "as_is"
    given_index: int = 0
    wrong_given: bool = False


Value = Var | IdOf | EnumValue | SearchOf | str | bool | None


@dataclass(frozen=True)
class Directive:
    name: Literal["skip", "include"]
    condition: bool | Var


@dataclass(frozen=True)
class Field:
    name: str
    alias: str | None = None
    selections: tuple[Selection, ...] | None = None
    directives: tuple[Directive, ...] = ()

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class InlineFragment:
    type_condition: str | None
    selections: tuple[Selection, ...]
    directives: tuple[Directive, ...] = ()


@dataclass(frozen=True)
class FragmentSpread:
    name: str
    directives: tuple[Directive, ...] = ()


Selection = Field | InlineFragment | FragmentSpread


@dataclass(frozen=True)
class FragmentDefinition:
    name: str
    type_condition: str
    selections: tuple[Selection, ...]


@dataclass(frozen=True)
class Root:
    """A root field, `child` or `findChildren`, with its arguments (omitted when absent)."""

    field: Literal["child", "findChildren"]
    arguments: tuple[tuple[str, Value], ...]
    selections: tuple[Selection, ...]
    alias: str | None = None
    directives: tuple[Directive, ...] = ()

    @property
    def key(self) -> str:
        return self.alias or self.field

    def argument(self, name: str) -> Value:
        return dict(self.arguments).get(name)


@dataclass(frozen=True)
class VariableDefinition:
    name: str
    type: str               # "Boolean!", "Boolean", "ID!", "Purpose!", "String", "ChildSearch!"
    default: Value = None   # a literal default (only for booleans here)
    has_default: bool = False


@dataclass(frozen=True)
class Document:
    """One operation plus its fragments, and the variable values sent with it.

    `values` holds what is sent; a variable absent from it takes its default.
    """

    roots: tuple[Root, ...]
    fragments: tuple[FragmentDefinition, ...] = ()
    definitions: tuple[VariableDefinition, ...] = ()
    values: tuple[tuple[str, Value], ...] = ()
    operation_name: str | None = None

    def fragment(self, name: str) -> FragmentDefinition:
        return next(f for f in self.fragments if f.name == name)

    def variable(self, name: str) -> Value:
        """The variable's value at run time (sent, else its default, else null)."""
        sent = dict(self.values)
        if name in sent:
            return sent[name]
        definition = next(d for d in self.definitions if d.name == name)
        return definition.default if definition.has_default else None


# ------------------------------------------------------------------ rendering


def _quote(text: str) -> str:
    assert '"' not in text, text
    assert "\\" not in text, text
    return f'"{text}"'


def _render_value(value: Value, ids: dict[str, str], searches: dict[SearchOf, dict[str, str]]
                  ) -> str:
    if isinstance(value, Var):
        return f"${value.name}"
    if isinstance(value, IdOf):
        return _quote(ids[value.fixture])
    if isinstance(value, EnumValue):
        return value.name
    if isinstance(value, SearchOf):
        inner = " ".join(f"{k}: {_quote(v)}" for k, v in searches[value].items())
        return "{ " + inner + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return _quote(value)


def _json_value(value: Value, ids: dict[str, str], searches: dict[SearchOf, dict[str, str]]
                ) -> Any:
    if isinstance(value, IdOf):
        return ids[value.fixture]
    if isinstance(value, EnumValue):
        return value.name
    if isinstance(value, SearchOf):
        return searches[value]
    assert not isinstance(value, Var)
    return value


def _condition(condition: bool | Var) -> str:
    if isinstance(condition, Var):
        return f"${condition.name}"
    return "true" if condition else "false"


def _directives(directives: tuple[Directive, ...]) -> str:
    return "".join(f" @{d.name}(if: {_condition(d.condition)})" for d in directives)


def _selections(selections: tuple[Selection, ...]) -> str:
    return "{ " + " ".join(_selection(s) for s in selections) + " }"


def _selection(selection: Selection) -> str:
    if isinstance(selection, Field):
        head = f"{selection.alias}: {selection.name}" if selection.alias else selection.name
        body = "" if selection.selections is None else " " + _selections(selection.selections)
        return head + _directives(selection.directives) + body
    if isinstance(selection, InlineFragment):
        on = f" on {selection.type_condition}" if selection.type_condition else ""
        return f"...{on}{_directives(selection.directives)} {_selections(selection.selections)}"
    return f"...{selection.name}{_directives(selection.directives)}"


@dataclass(frozen=True)
class Rendered:
    text: str
    variables: dict[str, Any]


def render(document: Document, ids: dict[str, str],
           searches: dict[SearchOf, dict[str, str]] | None = None) -> Rendered:
    """The document's text and the JSON variables to send with it."""
    searches = searches or {}
    roots = []
    for root in document.roots:
        head = f"{root.alias}: {root.field}" if root.alias else root.field
        args = ", ".join(f"{name}: {_render_value(value, ids, searches)}"
                         for name, value in root.arguments)
        roots.append(f"{head}({args}){_directives(root.directives)} "
                     f"{_selections(root.selections)}")
    definitions = ", ".join(
        f"${d.name}: {d.type}"
        + (f" = {_render_value(d.default, ids, searches)}" if d.has_default else "")
        for d in document.definitions)
    head = "query"
    if document.operation_name:
        head += f" {document.operation_name}"
    if definitions:
        head += f"({definitions})"
    text = head + " { " + " ".join(roots) + " }"
    for fragment in document.fragments:
        text += (f" fragment {fragment.name} on {fragment.type_condition} "
                 f"{_selections(fragment.selections)}")
    variables = {name: _json_value(value, ids, searches) for name, value in document.values}
    return Rendered(text, variables)


# ------------------------------------------------------- measures of a document

_TOKEN = re.compile(r'\.\.\.|[!$&()\[\]{}:=@|]|[_A-Za-z][_0-9A-Za-z]*|-?[0-9]+|"[^"\\]*"')


def count_tokens(text: str) -> int:
    """GraphQL lexical tokens (no comments, commas or block strings in our documents)."""
    rest = _TOKEN.sub(" ", text.replace(",", " "))
    assert not rest.strip(), f"untokenised: {rest.strip()!r}"
    return len(_TOKEN.findall(text.replace(",", " ")))


def count_aliases(document: Document) -> int:
    """Aliases as the gateway's limit counts them: every spread counts its fragment again
    (except a fragment already being expanded on the current path)."""

    def walk(selections: tuple[Selection, ...], path: frozenset[str]) -> int:
        total = 0
        for s in selections:
            if isinstance(s, Field):
                total += s.alias is not None
                total += walk(s.selections or (), path)
            elif isinstance(s, InlineFragment):
                total += walk(s.selections, path)
            elif s.name not in path:
                total += walk(document.fragment(s.name).selections, path | {s.name})
        return total

    return sum((r.alias is not None) + walk(r.selections, frozenset()) for r in document.roots)


def count_depth(document: Document) -> int:
    """The deepest field nesting (root field = 1), through fragments."""

    def walk(selections: tuple[Selection, ...], path: frozenset[str]) -> int:
        deepest = 0
        for s in selections:
            if isinstance(s, Field):
                deepest = max(deepest, 1 + walk(s.selections or (), path))
            elif isinstance(s, InlineFragment):
                deepest = max(deepest, walk(s.selections, path))
            elif s.name not in path:
                deepest = max(deepest, walk(document.fragment(s.name).selections,
                                            path | {s.name}))
        return deepest

    return max(1 + walk(r.selections, frozenset()) for r in document.roots)


def count_directives(document: Document) -> int:
    """Directives as the gateway's limit counts them: each once, as written."""

    def walk(selections: tuple[Selection, ...]) -> int:
        return sum(len(s.directives) + (0 if isinstance(s, FragmentSpread)
                                        else walk(s.selections or ()))
                   for s in selections)

    return (sum(len(r.directives) + walk(r.selections) for r in document.roots)
            + sum(walk(f.selections) for f in document.fragments))


def count_repeats(document: Document) -> int:
    """The most times one response key stands in one selection set (roots included)."""

    def walk(selections: tuple[Selection, ...]) -> int:
        keys: dict[str, int] = {}
        deepest = 0
        for s in selections:
            if isinstance(s, Field):
                key = s.alias or s.name
                keys[key] = keys.get(key, 0) + 1
                deepest = max(deepest, walk(s.selections or ()))
            elif isinstance(s, InlineFragment):
                deepest = max(deepest, walk(s.selections))
        return max(deepest, *keys.values(), 0)

    roots: dict[str, int] = {}
    for r in document.roots:
        roots[r.alias or r.field] = roots.get(r.alias or r.field, 0) + 1
    return max(max(roots.values(), default=0),
               *(walk(r.selections) for r in document.roots),
               *(walk(f.selections) for f in document.fragments), 0)


def too_complex(document: Document, text: str) -> bool:
    """Whether the gateway's default shape limits must refuse this document."""
    return (count_aliases(document) > MAX_ALIASES or count_tokens(text) > MAX_TOKENS
            or count_depth(document) > MAX_DEPTH or count_directives(document) > MAX_DIRECTIVES
            or document_cost(SCHEMA, parse(text)) > MAX_COST
            or count_repeats(document) > MAX_REPEATS)


def validate_document(text: str) -> None:
    """graphql-core's standard validation against `schema.graphql`; also the token count."""
    ast = parse(text)
    errors = validate(SCHEMA, ast)
    assert not errors, (text, [e.message for e in errors])
    assert ast.token_count == count_tokens(text), (ast.token_count, count_tokens(text))


# ------------------------------------------------------------ type helpers


def field_type(type_name: str, name: str) -> Any:
    """The graphql-core type of `type_name.name` (`__typename` is `String!`)."""
    if name == "__typename":
        return None
    return SCHEMA.type_map[type_name].fields[name].type  # type: ignore[union-attr]


def named_type(type_name: str, name: str) -> str | None:
    """The object type a field returns, or None for a leaf."""
    if name == "__typename":
        return None
    named = get_named_type(field_type(type_name, name))
    return named.name if isinstance(named, GraphQLObjectType) else None


def full_selection(type_name: str) -> tuple[Field, ...]:
    """Every field of `type_name`, recursively (what a full-access query selects)."""
    fields = []
    for name in SCHEMA.type_map[type_name].fields:  # type: ignore[union-attr]
        sub = named_type(type_name, name)
        fields.append(Field(name, selections=None if sub is None else full_selection(sub)))
    return tuple(fields)


def is_non_null(type_: Any) -> bool:
    return isinstance(type_, GraphQLNonNull)


def is_list(type_: Any) -> bool:
    return isinstance(type_, GraphQLList)


# ----------------------------------------------------------------- strategies


@dataclass
class _Builder:
    """The mutable state of drawing one document (bindings, fragments, variables)."""

    draw: Any
    alias_rate: int                 # out of 10
    max_items: int
    keys: dict[tuple[str, str], str] = field(default_factory=dict)
    fragments: list[FragmentDefinition] = field(default_factory=list)
    in_progress: set[str] = field(default_factory=set)
    next_fragment: int = 0
    definitions: dict[str, VariableDefinition] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)

    def bind(self, type_name: str, key: str, name: str) -> bool:
        """Bind a response key to a field of `type_name`; False if bound to another."""
        bound = self.keys.setdefault((type_name, key), name)
        return bound == name

    def alias(self, type_name: str, name: str) -> str | None:
        if self.draw(st.integers(0, 9)) >= self.alias_rate:
            return None
        candidate = self.draw(st.sampled_from((*ALIASES, name)))
        return candidate if self.bind(type_name, candidate, name) else None

    def condition(self) -> bool | Var:
        if self.draw(st.booleans()):
            return self.draw(st.booleans())
        name = self.draw(st.sampled_from(BOOL_VARIABLES))
        if name not in self.definitions:
            style = self.draw(st.sampled_from(("required", "default", "default_sent")))
            if style == "required":
                self.definitions[name] = VariableDefinition(name, "Boolean!")
                self.values[name] = self.draw(st.booleans())
            else:
                default = self.draw(st.booleans())
                self.definitions[name] = VariableDefinition(name, "Boolean", default, True)
                if style == "default_sent":
                    self.values[name] = self.draw(st.booleans())
        return Var(name)

    def directives(self) -> tuple[Directive, ...]:
        roll = self.draw(st.integers(0, 9))
        if roll < 7:
            return ()
        names = {7: ("skip",), 8: ("include",), 9: ("include", "skip")}[roll]
        return tuple(Directive(n, self.condition()) for n in names)  # type: ignore[arg-type]

    def selection_set(self, type_name: str, nesting: int) -> tuple[Selection, ...]:
        wide = type_name in {"Child", "ChildMatch"} and nesting == 0
        count = self.draw(st.integers(1, self.max_items if wide else 3))
        selections: list[Selection] = []
        for _ in range(count):
            kind = self.draw(st.integers(0, 11))
            if kind == 9 and nesting < 3:
                selections.append(InlineFragment(
                    self.draw(st.sampled_from((type_name, None))),
                    self.selection_set(type_name, nesting + 1), self.directives()))
            elif kind == 10 and nesting < 3:
                selections.append(self.spread(type_name, nesting))
            elif kind == 11 and selections:
                # the same selection again, verbatim (e.g. a field twice without alias)
                selections.append(self.draw(st.sampled_from(selections)))
            else:
                selections.append(self.field(type_name, nesting))
        return tuple(selections)

    def field(self, type_name: str, nesting: int, name: str | None = None) -> Field:
        if name is None:
            names = list(SCHEMA.type_map[type_name].fields)  # type: ignore[union-attr]
            name = self.draw(st.sampled_from([*names, "__typename"]))
        alias = self.alias(type_name, name)
        if alias is None and not self.bind(type_name, name, name):
            name = "__typename"  # never happens: pool aliases are no field names
        sub_type = named_type(type_name, name)
        selections = None if sub_type is None else self.selection_set(sub_type, nesting + 1)
        return Field(name, alias, selections, self.directives())

    def spread(self, type_name: str, nesting: int) -> FragmentSpread:
        reusable = [f.name for f in self.fragments if f.type_condition == type_name]
        if reusable and self.draw(st.booleans()):
            name = self.draw(st.sampled_from(reusable))
        else:
            name = f"F{self.next_fragment}"
            self.next_fragment += 1
            self.in_progress.add(name)
            selections = self.selection_set(type_name, nesting + 1)
            self.in_progress.discard(name)
            self.fragments.append(FragmentDefinition(name, type_name, selections))
        return FragmentSpread(name, self.directives())

    def variable(self, name: str, type_: str, value: Value) -> Var:
        self.definitions[name] = VariableDefinition(name, type_)
        self.values[name] = value
        return Var(name)

    def argument(self, name: str, type_: str, value: Value) -> Value:
        """An argument as a literal or through a variable of its type."""
        if self.draw(st.booleans()):
            return self.variable(name, type_, value)
        return value

    def case_argument(self, index: int) -> tuple[tuple[str, Value], ...]:
        case = self.draw(st.sampled_from(CASE_REFERENCES))
        style = self.draw(st.sampled_from(("literal", "variable", "omitted_value")))
        if case is None and self.draw(st.booleans()):
            return ()  # argument left out
        if style == "literal":
            return (("caseReference", case),)
        name = f"c{index}"
        self.definitions[name] = VariableDefinition(name, "String")
        if style == "variable" or case is not None:
            self.values[name] = case
        return (("caseReference", Var(name)),)

    def child_root(self, index: int, key: str | None) -> Root:
        fixture = self.draw(st.sampled_from(WEIGHTED_FIXTURES))
        purpose = self.draw(st.sampled_from(DRAWN_PURPOSES))
        arguments = (
            ("id", self.argument(f"id{index}", "ID!", IdOf(fixture))),
            ("purpose", self.argument(f"p{index}", "Purpose!", EnumValue(purpose))),
            *self.case_argument(index),
        )
        selections = self.selection_set("Child", 0)
        if self.draw(st.booleans()):
            # half the time, also a field the rules treat specially for this child
            focus = self.draw(st.sampled_from(
                (*FOCUS.get(fixture, ("shielded", "sources")), *PURPOSE_FOCUS.get(purpose, ()))))
            sub = named_type("Child", focus)
            selections = (*selections, Field(focus, self.alias("Child", focus),
                                             None if sub is None else full_selection(sub)))
        return Root("child", arguments, selections,
                    alias=None if key == "child" else key, directives=self.directives())

    def find_root(self, index: int, key: str | None) -> Root:
        search = self.draw(searches())
        purpose = self.draw(st.sampled_from(DRAWN_PURPOSES))
        arguments = (
            ("search", self.argument(f"s{index}", "ChildSearch!", search)),
            ("purpose", self.argument(f"p{index}", "Purpose!", EnumValue(purpose))),
            *self.case_argument(index),
        )
        return Root("findChildren", arguments, self.selection_set("ChildMatch", 0),
                    alias=None if key == "findChildren" else key,
                    directives=self.directives())


@st.composite
def scope_sets(draw: Any, scopes: tuple[str, ...]) -> tuple[str, ...]:
    """A subset of `scopes` (each held with probability 2/3; one in four: all of them),
    in a random order (the token's `scope` claim is unordered)."""
    if draw(st.integers(0, 3)) == 0:
        chosen = list(scopes)
    else:
        chosen = [s for s in scopes if draw(st.integers(0, 2)) > 0]
    return tuple(draw(st.permutations(chosen)))


@st.composite
def searches(draw: Any) -> SearchOf:
    form = draw(st.sampled_from(("nhs", "nhs", "given", "postcode", "both")))
    return SearchOf(
        fixture=draw(st.sampled_from(WEIGHTED_FIXTURES)), form=form,
        nhs_style=draw(st.sampled_from(("plain", "spaced"))),
        name_style=draw(st.sampled_from(("as_is", "upper", "lower", "padded"))),
        postcode_style=draw(st.sampled_from(("as_is", "lower", "no_space"))),
        given_index=draw(st.integers(0, 1)),
        wrong_given=form in {"given", "both"} and draw(st.integers(0, 5)) == 0,
    )


def _search_keys(search: SearchOf) -> dict[str, str]:
    """A stand-in `ChildSearch` with the real one's fields (so the same token count)."""
    keys = {"nhs": ("nhsNumber",), "given": ("familyName", "dateOfBirth", "givenName"),
            "postcode": ("familyName", "dateOfBirth", "postcode"),
            "both": ("familyName", "dateOfBirth", "givenName", "postcode")}[search.form]
    return dict.fromkeys(keys, "x")


def _root_keys(draw: Any, field_name: str, count: int) -> list[str]:
    """Distinct response keys for `count` root fields (roots with different args must differ)."""
    keys: list[str] = []
    for _ in range(count):
        options = [k for k in (field_name, *ROOT_ALIASES) if k not in keys]
        keys.append(draw(st.sampled_from(options)))
    return keys


@st.composite
def documents(draw: Any, root_field: Literal["child", "findChildren"] = "child",
              max_roots: int = 2) -> Document:
    """A valid query document over `root_field`, sometimes past the gateway's shape limits.

    Mostly within the limits (at most 15 aliases, 2,000 tokens); one document in
    twenty is alias-heavy (landing on either side of 15) and one in twenty is
    padded to land within three tokens either side of 2,000.
    """
    mode = draw(st.sampled_from(("normal",) * 36 + ("aliases",) * 2 + ("tokens",) * 2))
    builder = _Builder(draw, alias_rate=9 if mode == "aliases" else 2,
                       max_items=12 if mode == "aliases" else 7)
    count = draw(st.integers(1, max_roots))
    keys = _root_keys(draw, root_field, count)
    make = builder.child_root if root_field == "child" else builder.find_root
    roots = tuple(make(i, key) for i, key in enumerate(keys))
    document = Document(
        roots=roots, fragments=tuple(builder.fragments),
        definitions=tuple(builder.definitions.values()), values=tuple(builder.values.items()),
        operation_name=draw(st.sampled_from((None, "Q"))))
    dummy_ids = dict.fromkeys(FIXTURES, "c1.dummy")
    dummy_searches = {s: _search_keys(s) for s in (*(v for r in roots for _, v in r.arguments),
                                                   *(v for _, v in document.values))
                      if isinstance(s, SearchOf)}
    text = render(document, dummy_ids, dummy_searches).text
    validate_document(text)
    if mode == "tokens":
        target = draw(st.sampled_from((MAX_TOKENS - 1, MAX_TOKENS, MAX_TOKENS + 1))) + draw(
            st.integers(-3, 3))
        first, base = document.roots[0], count_tokens(text)
        padded = replace(first, selections=first.selections + padding(target - base))
        document = replace(document, roots=(padded, *document.roots[1:]))
        text = render(document, dummy_ids, dummy_searches).text
        validate_document(text)
        assert count_tokens(text) == max(target, base), text
    elif mode == "normal":
        # ordinary documents stay inside the limits (the other modes probe them)
        assume(count_aliases(document) <= MAX_ALIASES)
    return document


# 19 tokens selecting one field: padding made of bare repeated fields would trip
# graphql-core's validation budget for overlapping fields long before 2,000 tokens
# (see test_regressions: about 800 repeated fields are refused).
_PAD_UNIT: Selection = Field("__typename")
for _ in range(6):  # nested inline fragments: dense in tokens, free of directives
    _PAD_UNIT = InlineFragment(None, (_PAD_UNIT,))
_PAD_UNIT_TOKENS = count_tokens(_selection(_PAD_UNIT))


def padding(tokens: int) -> tuple[Selection, ...]:
    """Selections of exactly `tokens` tokens (none if `tokens` <= 0), each `__typename`."""
    if tokens <= 0:
        return ()
    units, rest = divmod(tokens, _PAD_UNIT_TOKENS)
    return (_PAD_UNIT,) * units + (Field("__typename"),) * rest


# ----------------------------------------------------- documents written as text


def from_text(text: str, values: dict[str, Value] | None = None) -> Document:
    """A hand-written document as the AST (for explicit regression examples).

    `values` are the variables sent; a fixture child's id is `IdOf(fixture)`
    and a purpose `EnumValue(name)`.
    """
    from graphql import (
        BooleanValueNode,
        EnumValueNode,
        FieldNode,
        FragmentDefinitionNode,
        FragmentSpreadNode,
        InlineFragmentNode,
        NullValueNode,
        OperationDefinitionNode,
        StringValueNode,
        VariableNode,
        print_ast,
    )

    def value(node: Any) -> Value:
        if isinstance(node, VariableNode):
            return Var(node.name.value)
        if isinstance(node, EnumValueNode):
            return EnumValue(node.value)
        if isinstance(node, BooleanValueNode):
            return node.value
        if isinstance(node, StringValueNode):
            return node.value
        assert isinstance(node, NullValueNode), node
        return None

    def directives(node: Any) -> tuple[Directive, ...]:
        found = []
        for d in node.directives or ():
            condition = value(d.arguments[0].value)
            assert isinstance(condition, bool | Var)
            found.append(Directive(d.name.value, condition))
        return tuple(found)

    def selections(node: Any) -> tuple[Selection, ...]:
        out: list[Selection] = []
        for s in node.selection_set.selections:
            if isinstance(s, FieldNode):
                out.append(Field(s.name.value, s.alias.value if s.alias else None,
                                 selections(s) if s.selection_set else None, directives(s)))
            elif isinstance(s, InlineFragmentNode):
                on = s.type_condition.name.value if s.type_condition else None
                out.append(InlineFragment(on, selections(s), directives(s)))
            else:
                assert isinstance(s, FragmentSpreadNode)
                out.append(FragmentSpread(s.name.value, directives(s)))
        return tuple(out)

    ast = parse(text)
    [operation] = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
    roots = tuple(
        Root(f.name.value, tuple((a.name.value, value(a.value)) for a in f.arguments),
             selections(f), f.alias.value if f.alias else None, directives(f))
        for f in operation.selection_set.selections if isinstance(f, FieldNode))
    fragments = tuple(FragmentDefinition(d.name.value, d.type_condition.name.value, selections(d))
                      for d in ast.definitions if isinstance(d, FragmentDefinitionNode))
    definitions = tuple(
        VariableDefinition(v.variable.name.value, print_ast(v.type),
                           None if v.default_value is None else value(v.default_value),
                           v.default_value is not None)
        for v in operation.variable_definitions or ())
    document = Document(roots, fragments, definitions, tuple((values or {}).items()),
                        operation.name.value if operation.name else None)
    validate_document(render(document, dict.fromkeys(FIXTURES, "c1.x")).text)
    return document
