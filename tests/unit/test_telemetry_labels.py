"""Metric labels come from closed sets: operation labels from the schema, codes from the gateway."""

from __future__ import annotations

import json

import pytest
from graphql import parse
from starlette.responses import Response

from gateway.telemetry import requests
from gateway.telemetry.requests import MAX_OPERATIONS, operation_label, outcome_code


def _response(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")).encode(), status)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"data": {"child": {"id": "x"}}}, 200, "OK"),
    ({"errors": [{"message": "m", "extensions": {"code": "UNAUTHENTICATED"}}]}, 401,
     "UNAUTHENTICATED"),
    ({"data": {"child": None}, "errors": [{"message": "m", "path": ["child"],
                                          "extensions": {"code": "ACCESS_BUDGET_EXCEEDED",
                                                         "budget": "subject_hour"}}]}, 429,
     "ACCESS_BUDGET_EXCEEDED"),
    # An alias named `errors` and a field aliased `code` in `data` are not the errors.
    ({"data": {"errors": [{"code": "9990001234"}]},
      "errors": [{"message": "m", "path": ["errors"], "extensions": {"code": "SHIELDED"}}]},
     200, "SHIELDED"),
    ({"data": {"errors": [{"code": "NOT_FOUND"}]}}, 200, "OK"),
    # Not a code the gateway defines, or no code at all: "OTHER", never the text.
    ({"errors": [{"message": "m", "extensions": {"code": "JANE_DOE"}}]}, 400, "OTHER"),
    ({"errors": [{"message": "m", "extensions": {"code": "9990001234"}}]}, 400, "OTHER"),
    ({"errors": [{"message": "m"}]}, 400, "OTHER"),
    ("not json", 500, "OTHER"),
])
def test_outcome_code(body, status, code):
    assert outcome_code(_response(body, status)) == code


@pytest.mark.parametrize(("document", "name", "label"), [
    ("{ child(id: \"x\", purpose: SAFEGUARDING) { id } }", None, "query child"),
    ("query Lookup9990001234 { child: findChildren(search: {nhsNumber: \"9990001234\"}, "
     "purpose: SAFEGUARDING) { id } }", None, "query findChildren"),
    ("query A { __typename } query B { child(id: \"x\", purpose: SAFEGUARDING) { id } }", "B",
     "query child"),
    ("query A { __typename }", "Missing", "-"),
    ("{ ... on Query { __typename } }", None, "other"),
])
def test_operation_label_is_the_type_and_root_fields_never_the_clients_names(document, name,
                                                                             label):
    assert operation_label(parse(document), name) == label


def test_operation_labels_are_bounded(monkeypatch):
    monkeypatch.setattr(requests, "_operations", set())
    labels = {operation_label(parse(f"{{ f{i} }}"), None) for i in range(MAX_OPERATIONS + 5)}
    assert len(labels) == MAX_OPERATIONS + 1
    assert "other" in labels
