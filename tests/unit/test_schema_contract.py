"""`schema.graphql` is the public contract: it must equal the schema the code prints."""

from pathlib import Path

from gateway.policy import FIELD_POLICY
from resolvers.schema import public_schema

SCHEMA_FILE = Path(__file__).parents[2] / "schema.graphql"


def test_schema_file_matches_code():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == public_schema(), (
        "schema.graphql drifted from the code; regenerate it with "
        "`python -c \"from resolvers.schema import public_schema; "
        "open('schema.graphql','w').write(public_schema())\"` and review the diff")


def test_contract_names_from_the_design_are_present():
    sdl = public_schema()
    for fragment in [
        "findChildren(search: ChildSearch!, purpose: Purpose!, caseReference: String = null): "
        "[ChildMatch!]!",
        "child(id: ID!, purpose: Purpose!, caseReference: String = null): Child",
        "enum Purpose {", "input ChildSearch {", "type ChildMatch {", "type SourceStatus {",
        "shielded: Boolean!", "sources: [SourceStatus!]!", "primaryCare: PrimaryCare",
    ]:
        assert fragment in sdl


def test_every_policy_entry_names_a_schema_field():
    sdl = public_schema()
    for key in FIELD_POLICY:
        type_name, field = key.split(".")
        block = sdl.split(f"type {type_name} {{", 1)[1].split("}", 1)[0]
        assert f"  {field}" in block, key
