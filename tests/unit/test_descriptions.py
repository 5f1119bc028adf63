"""Every name in the schema is described, and each field's description states its policy row."""

from __future__ import annotations

import typing

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
)

from gateway.core.merge import Status
from gateway.core.policy import DEFAULT_PURPOSES, FIELD_POLICY, Scope
from gateway.core.policy.table import load_table
from resolvers.descriptions import describe, purpose_value
from resolvers.enums import Purpose, SourceState
from resolvers.schema import public_schema


def schema() -> GraphQLSchema:
    import strawberry

    from resolvers.mutation import Mutation
    from resolvers.query import Query

    return strawberry.Schema(query=Query, mutation=Mutation)._schema


def _named_types() -> dict[str, object]:
    """The schema's own types: no introspection types, no built-in scalars."""
    builtin = {"String", "Boolean", "ID", "Int", "Float"}
    return {name: t for name, t in schema().type_map.items()
            if not name.startswith("__") and name not in builtin}


def _described() -> dict[str, str | None]:
    """`Type`, `Type.field`, `Type.field(arg)`, `Input.field` and `Enum.VALUE` -> description."""
    found: dict[str, str | None] = {}
    for name, gql_type in _named_types().items():
        assert isinstance(gql_type, (GraphQLObjectType, GraphQLInputObjectType, GraphQLEnumType,
                                     GraphQLScalarType))
        found[name] = gql_type.description
        if isinstance(gql_type, GraphQLEnumType):
            found.update({f"{name}.{v}": value.description
                          for v, value in gql_type.values.items()})
        elif isinstance(gql_type, GraphQLInputObjectType):
            found.update({f"{name}.{f}": field.description
                          for f, field in gql_type.fields.items()})
        elif isinstance(gql_type, GraphQLObjectType):
            for f, field in gql_type.fields.items():
                found[f"{name}.{f}"] = field.description
                found.update({f"{name}.{f}({a})": arg.description
                              for a, arg in field.args.items()})
    return found


def test_every_type_field_argument_and_enum_value_is_described():
    undescribed = sorted(name for name, text in _described().items() if not (text or "").strip())
    assert not undescribed, f"give these a description: {undescribed}"


def test_the_walk_reaches_arguments_input_fields_and_enum_values():
    described = _described()
    for name in ["Query.child(caseReference)", "ChildSearch.postcode", "Purpose.EDUCATION",
                 "SourceState.unavailable", "Child.address"]:
        assert name in described


@pytest.mark.parametrize("key", sorted(FIELD_POLICY))
def test_each_field_description_is_generated_from_its_policy_row(key):
    type_name, field_name = key.split(".")
    gql_type = schema().type_map[type_name]
    assert isinstance(gql_type, GraphQLObjectType)
    assert gql_type.fields[field_name].description == describe(key)


def test_every_policy_row_says_what_the_field_holds():
    missing = sorted(key for key, rule in FIELD_POLICY.items() if not rule.description.strip())
    assert not missing, f"rows without a [descriptions] entry in fields.toml: {missing}"


@pytest.mark.parametrize("key", sorted(FIELD_POLICY))
def test_a_description_names_the_rules_of_its_row(key):
    rule, text = FIELD_POLICY[key], describe(key)
    assert text.startswith(rule.description)
    for scope in rule.scopes:
        assert f"`{scope.value}`" in text
    if rule.inherit:
        assert f"Released whenever its `{key.split('.')[0]}` is." in text
    if rule.reveals_location:
        assert "(`SHIELDED`)" in text
        assert f"`{Scope.SHIELDED.value}`" in text
        assert "`caseReference`" in text
    if rule.sensitive:
        assert f"`{Scope.SENSITIVE.value}`" in text
        assert "consent" in text
        assert "absent, not redacted" in text
    if rule.source_fields:
        assert "`UPSTREAM_UNAVAILABLE`" in text
    if not (rule.reveals_location or rule.sensitive):
        assert "SHIELDED" not in text
        assert Scope.SENSITIVE.value not in text


@pytest.mark.parametrize(("key", "answer"), [
    ("Query.child", "null with `NOT_FOUND`"),
    ("Query.findChildren", "never among the matches"),
])
def test_the_lookups_state_the_18_plus_rule(key, answer):
    text = describe(key)
    assert "aged 18 or over" in text
    assert "consent to retention" in text
    assert text.endswith(f"{answer}.")


def test_scopes_the_purpose_limits_say_so_and_audit_scopes_do_not():
    assert describe("Child.address").count("if the purpose permits it") == 1
    assert "purpose" not in describe("Query.accessReport").split("Released with", 1)[1]
    assert "`audit.read` or `subject.self`" in describe("Query.accessReport")


def test_the_sensitive_rule_names_the_purposes_that_permit_it():
    assert "(by default `SAFEGUARDING` or `HEALTH_CARE`)" in describe("Child.services")


@pytest.mark.parametrize(("purpose", "fragment"), [
    ("SAFEGUARDING", "may use every `child.*` scope"),
    ("EARLY_HELP", "may not use `child.sensitive.read` or `child.protection.read` (fields "
                   "needing them are `FORBIDDEN`)"),
    ("EDUCATION", "may not use `child.health.read`, `child.sensitive.read` or "
                  "`child.protection.read` (fields needing them"),
    ("HEALTH_CARE", "may use every `child.*` scope"),
])
def test_purpose_values_are_described_from_the_purpose_table(purpose, fragment):
    assert fragment in purpose_value(purpose)
    gql_type = schema().type_map["Purpose"]
    assert isinstance(gql_type, GraphQLEnumType)
    assert (gql_type.values[purpose].description or "").endswith(purpose_value(purpose))


def test_purpose_enum_and_purpose_table_hold_the_same_values():
    assert {p.name for p in Purpose} == set(DEFAULT_PURPOSES)
    assert all(p.name == p.value for p in Purpose)


def test_source_state_is_the_core_status_set_with_its_wire_values():
    assert {s.value for s in SourceState} == set(typing.get_args(Status))
    sdl = public_schema()
    assert "enum SourceState {" in sdl
    assert "status: SourceState!" in sdl
    assert "purpose: Purpose\n" in sdl  # AccessRecord.purpose


def test_a_description_for_a_field_without_a_row_is_refused():
    text = ('[fields]\n"Child.x" = { scopes = [] }\n[purposes]\n'
            '[descriptions]\n"Child.y" = "Nothing."\n')
    with pytest.raises(ValueError, match=r"without a policy row: \['Child.y'\]"):
        load_table(text)


def test_the_loader_attaches_descriptions_to_rows():
    rules, _ = load_table('[fields]\n"Child.x" = { scopes = [] }\n"Child.z" = { scopes = [] }\n'
                         '[purposes]\n[descriptions]\n"Child.x" = "The x."\n')
    assert (rules["Child.x"].description, rules["Child.z"].description) == ("The x.", "")
