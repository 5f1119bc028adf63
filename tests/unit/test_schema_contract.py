"""`schema.graphql` is the public contract: it must equal the schema the code prints."""

from pathlib import Path

from graphql import GraphQLObjectType, GraphQLSchema, Node, Visitor, parse, print_ast, visit

from gateway.core.policy import FIELD_POLICY
from resolvers.mutation import Mutation
from resolvers.query import Query
from resolvers.schema import public_schema


def graphql_schema() -> GraphQLSchema:
    import strawberry

    return strawberry.Schema(query=Query, mutation=Mutation)._schema

SCHEMA_FILE = Path(__file__).parents[2] / "schema.graphql"


def test_schema_file_matches_code():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == public_schema(), (
        "schema.graphql drifted from the code; regenerate it with "
        "`python -c \"from resolvers.schema import public_schema; "
        "open('schema.graphql','w').write(public_schema())\"` and review the diff")


def _without_descriptions(sdl: str) -> str:
    """The SDL printed without descriptions: each signature back on one line."""

    class Strip(Visitor):
        def enter(self, node: Node, *_args: object) -> Node | None:
            if getattr(node, "description", None) is None:
                return None
            return type(node)(**{key: getattr(node, key) for key in node.keys
                                 if key != "description"})

    return print_ast(visit(parse(sdl), Strip()))


def test_contract_names_from_the_design_are_present():
    sdl = _without_descriptions(public_schema())
    for fragment in [
        "findChildren(search: ChildSearch!, purpose: Purpose!, caseReference: String = null): "
        "[ChildMatch!]!",
        "child(id: ID!, purpose: Purpose!, caseReference: String = null): Child",
        "enum Purpose {", "input ChildSearch {", "type ChildMatch {", "type SourceStatus {",
        "shielded: Boolean!", "sources: [SourceStatus!]!", "primaryCare: PrimaryCare",
        "connector: String!", "fromCache: Boolean!",
    ]:
        assert fragment in sdl


def _output_fields() -> set[str]:
    schema = graphql_schema()
    return {f"{name}.{field}" for name, gql_type in schema.type_map.items()
            if isinstance(gql_type, GraphQLObjectType) and not name.startswith("__")
            for field in gql_type.fields}


def test_every_schema_field_has_a_policy_row():
    missing = _output_fields() - set(FIELD_POLICY)
    assert not missing, f"schema fields without a row in gateway/core/policy/fields.toml: {missing}"


def test_every_policy_row_names_a_schema_field():
    stale = set(FIELD_POLICY) - _output_fields()
    assert not stale, f"rows in gateway/core/policy/fields.toml naming no schema field: {stale}"


def _between(text: str, name: str) -> str:
    return text.split(f"<!-- {name}:start -->\n", 1)[1].split(f"\n<!-- {name}:end -->", 1)[0]


def test_readme_shows_the_policy_table():
    from gateway.core.policy.render import markdown_fields, markdown_purposes

    readme = (SCHEMA_FILE.parent / "README.md").read_text(encoding="utf-8")
    assert _between(readme, "policy-fields") == markdown_fields()
    assert _between(readme, "policy-purposes") == markdown_purposes()
