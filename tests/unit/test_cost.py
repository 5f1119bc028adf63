"""The static cost of a document: fields times the objects they are asked of."""

import pytest
import strawberry
from graphql import parse

from resolvers.cost import LOOKUP_COST, document_cost
from resolvers.query import Query

SCHEMA = strawberry.Schema(query=Query)._schema
CHILD = 'child(id: "x", purpose: SAFEGUARDING)'


def cost(text):
    return document_cost(SCHEMA, parse(text))


@pytest.mark.parametrize(("document", "expected"), [
    (f"{{ {CHILD} {{ id }} }}", 1 + LOOKUP_COST + 1),
    (f"{{ {CHILD} {{ name {{ given family }} }} }}", 1 + LOOKUP_COST + 3),
    (f"{{ {CHILD} {{ carers {{ phone }} }} }}", 1 + LOOKUP_COST + 1 + 10),
    (f"{{ {CHILD} {{ services {{ kind name }} }} }}", 1 + LOOKUP_COST + 1 + 20),
    ('{ findChildren(search: {nhsNumber: "1"}, purpose: SAFEGUARDING) { id } }',
     1 + 5 * LOOKUP_COST + 5),
    (f"{{ a: {CHILD} {{ id }} b: {CHILD} {{ id }} }}", 2 * (1 + LOOKUP_COST + 1)),
])
def test_fields_count_for_every_object_they_are_asked_of(document, expected):
    assert cost(document) == expected


def test_fragments_count_wherever_they_are_spread():
    spread = (f"{{ a: {CHILD} {{ ...F }} b: {CHILD} {{ ...F }} }}"
              " fragment F on Child { services { kind name contact } }")
    inline = f"{{ a: {CHILD} {{ services {{ kind name contact }} }} b: {CHILD} {{ ... on Child "
    inline += "{ services { kind name contact } } } }"
    assert cost(spread) == cost(inline) == 2 * (1 + LOOKUP_COST + 1 + 30)


def test_the_most_expensive_operation_counts():
    assert cost(f"query A {{ {CHILD} {{ id }} }} query B {{ {CHILD} {{ id gender }} }}") == 13


def test_a_fragment_cycle_does_not_hang_the_count():
    # Invalid (other rules refuse it), but the cost walk must still end.
    assert cost(f"{{ {CHILD} {{ ...F }} }} fragment F on Child {{ id ...F }}") == 12
