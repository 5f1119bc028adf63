"""The request body's JSON (orjson first, `json` for what orjson refuses or reads otherwise)
and the response body's: the same values, the same errors, the same bytes as `json`."""

from __future__ import annotations

import json

import pytest

from gateway.core.errors import BadUserInputError
from gateway.web.http import _parse_json
from gateway.web.responses import _dump


@pytest.mark.parametrize("body", [
    b'{"query": "{ __typename }", "variables": {"id": "c1.abc", "n": 3, "f": 1.5}}',
    b'{"a": "\\u00e9\\n\\"", "b": [true, false, null], "c": {}}',
    '{"name": "Zoë 😀"}'.encode(),
    b'{"a": 1, "a": 2}',  # the last one wins, as in json
])
def test_values_are_those_json_reads(body):
    assert _parse_json(body) == json.loads(body)


@pytest.mark.parametrize("body", [
    b'{"n": 123456789012345678901234567890}',   # beyond 64 bits: orjson would give a float
    b'{"n": -18446744073709551617}',
    b'{"n": NaN, "m": Infinity}',                  # json's extensions, accepted as before
    '{"a": 1}'.encode("utf-16"),                   # json detects UTF-16 and UTF-32
    b'{"s": "\\ud800"}',                           # a lone surrogate escaped
])
def test_what_orjson_reads_otherwise_is_read_by_json(body):
    parsed = _parse_json(body)
    assert repr(parsed) == repr(json.loads(body))


def test_a_big_integer_stays_an_integer():
    assert _parse_json(b'{"n": 123456789012345678901234567890}') == {
        "n": 123456789012345678901234567890}


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "The request body is not JSON."),
    (b"\xff\xfe\xfa", "The request body is not JSON."),
    (b"", "The request body is not JSON."),
    (b"[" * 1_100 + b"]" * 1_100, "The request body nests too deeply."),
    (b"[" * 30_000 + b"]" * 30_000, "The request body nests too deeply."),
])
def test_errors_are_those_of_json(body, message):
    with pytest.raises(BadUserInputError) as raised:
        _parse_json(body)
    assert raised.value.message == message


@pytest.mark.parametrize("body", [
    {"data": {"child": {"name": {"given": ["Zoë", "Ann"], "family": "O'Neil \"Q\""},
                        "n": 2**63 - 1, "ok": True, "none": None, "text": "a\x00\x1f\u2028/\\"}}},
    {"errors": [{"message": "m", "extensions": {"code": "BAD_USER_INPUT"}}]},
])
def test_response_bytes_are_those_of_json(body):
    assert _dump(body) == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def test_what_orjson_refuses_is_written_by_json():
    body = {"data": {"n": 2**70, 1: "non-string key"}}
    assert _dump(body) == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
