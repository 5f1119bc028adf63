"""`/graphql`'s edge without Starlette's `Request`: headers read once from the scope, the
body straight from `receive`, responses with pre-encoded headers; all as Starlette did."""

from __future__ import annotations

import asyncio

import pytest
from starlette.datastructures import Headers
from starlette.responses import Response

from gateway.web.http import _BodyError, _Head, _read_body
from gateway.web.responses import GRAPHQL_RESPONSE, JSON, error_response, result_response

RAW = [(b"host", b"gw"), (b"accept", b"application/json"), (b"accept", b"text/html"),
       (b"authorization", b"Bearer a"), (b"authorization", b"Bearer b"), (b"dpop", b"p1"),
       (b"dpop", b"p2"), (b"content-type", b"application/json; charset=utf-8"),
       (b"content-length", b"12"), (b"traceparent", b"00-ab-cd-01"), (b"x-other", b"\xe9")]


def test_headers_are_read_as_starlette_reads_them():
    head, headers = _Head(RAW), Headers(raw=RAW)
    for name in ("accept", "authorization", "content-type", "content-length"):
        assert getattr(head, name.replace("-", "_")) == headers.get(name)
    assert head.dpop == headers.getlist("dpop")
    assert head.trace == {"traceparent": "00-ab-cd-01"}
    bare = _Head([(b"host", b"gw")])
    assert (bare.accept, bare.authorization, bare.dpop, bare.trace) == (None, None, [], {})


def _receiver(*messages: dict[str, object]):
    queue = list(messages)

    async def receive() -> dict[str, object]:
        return queue.pop(0)
    return receive


def _read(raw: list[tuple[bytes, bytes]], *messages: dict[str, object],
          limit: int = 10) -> bytes:
    return asyncio.run(_read_body(_Head(raw), _receiver(*messages), limit))


JSON_TYPE = [(b"content-type", b"application/json")]


def test_the_body_is_read_in_chunks():
    assert _read(JSON_TYPE, {"type": "http.request", "body": b"{}"}) == b"{}"
    assert _read(JSON_TYPE, {"type": "http.request", "body": b"{", "more_body": True},
                 {"type": "http.request", "body": b"", "more_body": True},
                 {"type": "http.request", "body": b"}"}) == b"{}"
    assert _read(JSON_TYPE, {"type": "http.request"}) == b""


@pytest.mark.parametrize(("raw", "messages", "status"), [
    ([(b"content-type", b"text/plain")], [{"type": "http.request", "body": b"{}"}], 415),
    ([], [{"type": "http.request", "body": b"{}"}], 415),
    ([*JSON_TYPE, (b"content-length", b"11")], [], 413),
    ([*JSON_TYPE, (b"content-length", b"-1")], [], 413),
    (JSON_TYPE, [{"type": "http.request", "body": b"123456", "more_body": True},
                 {"type": "http.request", "body": b"78901"}], 413),
    (JSON_TYPE, [{"type": "http.request", "body": b"{", "more_body": True},
                 {"type": "http.disconnect"}], 408),
])
def test_refused_bodies(raw, messages, status):
    with pytest.raises(_BodyError) as caught:
        _read(raw, *messages)
    assert caught.value.status == status


def _starlette(status: int, request_id: str, media_type: str,
               extra: dict[str, str] | None = None) -> list[tuple[bytes, bytes]]:
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "X-Request-Id": request_id, **(extra or {})}
    return Response(b"{}", status, headers, media_type=media_type).raw_headers


@pytest.mark.parametrize("media_type", [JSON, GRAPHQL_RESPONSE])
@pytest.mark.parametrize("extra", [None, {"Retry-After": "5"}, {"Allow": "POST"},
                                   {"WWW-Authenticate": 'Bearer realm="x"'}])
def test_error_responses_have_starlettes_headers(media_type, extra):
    response = error_response(401, "UNAUTHENTICATED", "No.", "rid", media_type, extra)
    expected = _starlette(401, "rid", media_type, extra)
    expected[-2] = (b"content-length", str(len(response.body)).encode())
    assert response.raw_headers == expected
    assert response.headers["x-request-id"] == "rid"


def test_result_responses_have_starlettes_headers():
    from strawberry.types import ExecutionResult

    response = result_response(ExecutionResult(data={"a": 1}, errors=None), GRAPHQL_RESPONSE,
                               "rid", development=False, max_errors=5)
    assert response.body == b'{"data":{"a":1}}'
    expected = _starlette(200, "rid", GRAPHQL_RESPONSE)
    expected[-2] = (b"content-length", b"16")
    assert (response.status_code, response.raw_headers) == (200, expected)
