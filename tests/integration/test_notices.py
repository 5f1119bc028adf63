"""Signed "changed" notices purge one child's cache at once, in real Redis; nothing else does.

README "Change notices" and the protocol in `gateway.web.notices`.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.web.notices import NoticeEndpoint, sign_notice
from tests.integration.harness import running_gateway
from tests.integration.support import (
    SYSTEMS,
    cache_keys,
    connectors_config,
    fresh_nhs_numbers,
    sealer,
    sources_of,
)

COUNCIL_SECRET = "council-notice-secret-" + "n" * 32
GP_SECRET = "gp-notice-secret-" + "g" * 32
SECRETS = {"council": COUNCIL_SECRET, "gp": GP_SECRET}  # the school has none
BAD_CHECK_DIGIT = "9990000017"
FORMATTER = logging.Formatter("%(name)s %(levelname)s %(message)s")


@pytest.fixture(autouse=True)
def no_personal_data_or_secret_in_logs(caplog, population):
    """Every line logged while a test runs (set-up included) is checked afterwards."""
    caplog.set_level(logging.DEBUG)
    yield
    forbidden = {c.nhs_number for c in population.children}
    forbidden |= {*fresh_nhs_numbers(population, 101), BAD_CHECK_DIGIT, *SECRETS.values()}
    for when in ("setup", "call"):
        for record in caplog.get_records(when):
            line = FORMATTER.format(record)
            leaked = [value for value in forbidden if value in line]
            assert not leaked, line


@pytest.fixture
async def gateway(sims, jwks, signing_key):
    config = connectors_config(sims, council={"notice_secret": COUNCIL_SECRET},
                               gp={"notice_secret": GP_SECRET})
    async with running_gateway(sims, jwks, signing_key, connectors=config) as running:
        yield running


def notice(*nhs_numbers: str) -> bytes:
    return json.dumps({"type": "changed", "nhsNumbers": list(nhs_numbers)}).encode()


async def send(gateway, body: bytes, *, connector: str = "council", secret: str | None = None,
               timestamp: int | None = None, headers: dict[str, str] | None = None,
               client: httpx.AsyncClient | None = None) -> httpx.Response:
    """POST a notice signed with `secret` (the connector's own by default) unless `headers`."""
    if headers is None:
        signing = secret or SECRETS.get(connector, COUNCIL_SECRET)
        now = int(time.time()) if timestamp is None else timestamp
        headers = sign_notice(signing, body, now)
    return await (client or gateway.client).post(
        f"/notices/{connector}", content=body,
        headers={"Content-Type": "application/json", **headers})


async def keys_of(redis_client, gateway, fixture: str) -> set[bytes]:
    """The child's cache keys present in Redis now."""
    names = sealer(gateway)
    nhs = gateway.fixtures[fixture]
    wanted = {names.key(n, nhs).encode() for n in SYSTEMS}
    return wanted & set(await cache_keys(redis_client, gateway))


async def warm(gateway, redis_client) -> list[bytes]:
    for fixture in ("ordinary", "sensitive_consented"):
        body = await gateway.child(fixture)
        assert sources_of(body["data"]["child"]) == dict.fromkeys(SYSTEMS, ("ok", False))
    assert len(await keys_of(redis_client, gateway, "ordinary")) == len(SYSTEMS)
    assert len(await keys_of(redis_client, gateway, "sensitive_consented")) == len(SYSTEMS)
    return await cache_keys(redis_client, gateway)


def notice_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.get_records("call") if r.name == "gateway.web.notices"]


async def test_a_signed_notice_purges_that_child_only_and_the_next_query_is_live(
        gateway, redis_client, caplog):
    await warm(gateway, redis_client)
    response = await send(gateway, notice(gateway.fixtures["ordinary"]))
    assert response.status_code == 202, response.text
    assert response.json() == {"purged": 1}
    assert response.headers["cache-control"] == "no-store"
    assert await keys_of(redis_client, gateway, "ordinary") == set()
    assert len(await keys_of(redis_client, gateway, "sensitive_consented")) == len(SYSTEMS)
    again = await gateway.child("ordinary")
    assert sources_of(again["data"]["child"]) == dict.fromkeys(SYSTEMS, ("ok", False))
    other = await gateway.child("sensitive_consented")
    assert sources_of(other["data"]["child"]) == dict.fromkeys(SYSTEMS, ("ok", True))
    [line] = notice_lines(caplog)
    assert "connector=council outcome=purged count=1" in line


async def test_any_systems_notice_purges_every_systems_answers(gateway, redis_client):
    await warm(gateway, redis_client)
    response = await send(gateway, notice(gateway.fixtures["ordinary"]), connector="gp")
    assert response.status_code == 202, response.text
    assert await keys_of(redis_client, gateway, "ordinary") == set()


async def test_several_children_at_once_counted_once_each(gateway, redis_client, population):
    await warm(gateway, redis_client)
    one, two = gateway.fixtures["ordinary"], gateway.fixtures["sensitive_consented"]
    never_cached = fresh_nhs_numbers(population, 1)[0]
    response = await send(gateway, notice(one, two, one, never_cached))
    assert response.json() == {"purged": 3}
    assert await cache_keys(redis_client, gateway) == []


async def test_a_rotating_sender_may_send_several_signatures(gateway, redis_client):
    await warm(gateway, redis_client)
    body, now = notice(gateway.fixtures["ordinary"]), int(time.time())
    old = sign_notice("retired-council-secret-" + "r" * 32, body, now)["X-CP-Signature"]
    new = sign_notice(COUNCIL_SECRET, body, now)["X-CP-Signature"]
    response = await send(gateway, body, headers={"X-CP-Timestamp": str(now),
                                                  "X-CP-Signature": f"{old}, {new}"})
    assert response.status_code == 202, response.text
    assert await keys_of(redis_client, gateway, "ordinary") == set()


async def test_a_replay_inside_the_window_only_purges_again(gateway, redis_client):
    body = notice(gateway.fixtures["ordinary"])
    headers = sign_notice(COUNCIL_SECRET, body, int(time.time()))
    await warm(gateway, redis_client)
    assert (await send(gateway, body, headers=headers)).status_code == 202
    await gateway.child("ordinary")
    assert (await send(gateway, body, headers=headers)).status_code == 202
    assert await keys_of(redis_client, gateway, "ordinary") == set()


def _signed_with(secret: str, offset: int = 0):
    def build(body: bytes) -> dict[str, str]:
        return sign_notice(secret, body, int(time.time()) + offset)
    return build


def _tampered(body: bytes) -> dict[str, str]:
    """A true signature of another timestamp, sent with this one."""
    now = int(time.time())
    return {**sign_notice(COUNCIL_SECRET, body, now - 1), "X-CP-Timestamp": str(now)}


def _drop(header: str):
    def build(body: bytes) -> dict[str, str]:
        headers = sign_notice(COUNCIL_SECRET, body, int(time.time()))
        del headers[header]
        return headers
    return build


def _timestamp(value: str):
    def build(body: bytes) -> dict[str, str]:
        return {**sign_notice(COUNCIL_SECRET, body, int(time.time())), "X-CP-Timestamp": value}
    return build


def _signature(value: str):
    def build(body: bytes) -> dict[str, str]:
        return {**sign_notice(COUNCIL_SECRET, body, int(time.time())), "X-CP-Signature": value}
    return build


UNAUTHENTICATED = {
    "wrong-secret": _signed_with("not-the-council-secret-" + "x" * 32),
    "another-connectors-secret": _signed_with(GP_SECRET),
    "stale": _signed_with(COUNCIL_SECRET, -301 - 5),
    "long-stale": _signed_with(COUNCIL_SECRET, -86_400),
    "future": _signed_with(COUNCIL_SECRET, 301 + 5),
    "signed-other-timestamp": _tampered,
    "no-timestamp": _drop("X-CP-Timestamp"),
    "no-signature": _drop("X-CP-Signature"),
    "no-headers": lambda body: {},
    "non-numeric-timestamp": _timestamp("yesterday"),
    "fractional-timestamp": _timestamp(f"{int(time.time())}.5"),
    "negative-timestamp": _timestamp("-1"),
    "signature-without-scheme": _signature("0" * 64),
    "signature-uppercase": _signature("v1=" + "A" * 64),
    "signature-empty": _signature(""),
}


@pytest.mark.parametrize("case", list(UNAUTHENTICATED))
async def test_unauthenticated_notices_are_401_with_one_message_and_purge_nothing(
        gateway, redis_client, caplog, case):
    before = await warm(gateway, redis_client)
    body = notice(gateway.fixtures["ordinary"])
    response = await send(gateway, body, headers=UNAUTHENTICATED[case](body))
    assert response.status_code == 401
    assert response.json() == {"errors": [{
        "message": "A valid, current notice signature is required.",
        "extensions": {"code": "UNAUTHENTICATED"}}]}
    assert response.headers["www-authenticate"].startswith("CP-Signature")
    assert await cache_keys(redis_client, gateway) == before
    [line] = notice_lines(caplog)
    assert "connector=council outcome=refused:" in line


async def test_a_tampered_body_is_401(gateway, redis_client):
    before = await warm(gateway, redis_client)
    signed = notice(gateway.fixtures["sensitive_consented"])
    sent = notice(gateway.fixtures["ordinary"])
    response = await send(gateway, sent, headers=sign_notice(COUNCIL_SECRET, signed,
                                                             int(time.time())))
    assert response.status_code == 401
    assert await cache_keys(redis_client, gateway) == before


@pytest.mark.parametrize("connector", ["school", "nosuch", "COUNCIL", "council%0Aforged"])
async def test_unknown_or_secretless_connectors_are_404_alike(gateway, redis_client, caplog,
                                                              connector):
    before = await warm(gateway, redis_client)
    response = await send(gateway, notice(gateway.fixtures["ordinary"]), connector=connector,
                          secret=COUNCIL_SECRET)
    assert response.status_code == 404
    assert response.json() == {"errors": [{"message": "No notices are accepted here.",
                                           "extensions": {"code": "NOT_FOUND"}}]}
    assert await cache_keys(redis_client, gateway) == before
    [line] = notice_lines(caplog)
    expected = "school" if connector == "school" else "-"
    assert f"connector={expected} outcome=refused:no-such-endpoint" in line
    assert "\n" not in line


def _bad_bodies(population) -> dict[str, tuple[bytes, str]]:
    valid = fresh_nhs_numbers(population, 101)
    return {
        "not-json": (b"{type: changed}", "not JSON"),
        "not-utf8": (b"\xff\xfe\xfa\xfb", "not JSON"),
        "not-an-object": (b'["changed"]', "exactly the keys"),
        "extra-key": (json.dumps({"type": "changed", "nhsNumbers": valid[:1],
                                  "reason": "moved"}).encode(), "exactly the keys"),
        "wrong-type": (json.dumps({"type": "shielded", "nhsNumbers": valid[:1]}).encode(),
                       '"type" must be "changed"'),
        "empty-list": (notice(), "1 to 100"),
        "101-numbers": (notice(*valid), "1 to 100"),
        "bad-check-digit": (notice(valid[0], BAD_CHECK_DIGIT), '"nhsNumbers"[1]'),
        "number-not-string": (b'{"type": "changed", "nhsNumbers": [9434765919]}',
                              '"nhsNumbers"[0]'),
    }


@pytest.mark.parametrize("case", ["not-json", "not-utf8", "not-an-object", "extra-key",
                                  "wrong-type", "empty-list", "101-numbers", "bad-check-digit",
                                  "number-not-string"])
async def test_signed_but_malformed_notices_are_400_and_purge_nothing(
        gateway, redis_client, population, caplog, case):
    before = await warm(gateway, redis_client)
    body, says = _bad_bodies(population)[case]
    response = await send(gateway, body)
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert says in error["message"]
    assert await cache_keys(redis_client, gateway) == before
    [line] = notice_lines(caplog)
    assert "connector=council outcome=refused:bad-notice count=0" in line


async def _chunks(body: bytes):
    for start in range(0, len(body), 4096):
        yield body[start:start + 4096]


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_16_kib_is_413_and_purges_nothing(gateway, redis_client, streamed):
    before = await warm(gateway, redis_client)
    valid = notice(gateway.fixtures["ordinary"])
    body = valid + b" " * (16 * 1024 + 1 - len(valid))
    headers = {"Content-Type": "application/json",
               **sign_notice(COUNCIL_SECRET, body, int(time.time()))}
    response = await gateway.client.post("/notices/council", headers=headers,
                                         content=_chunks(body) if streamed else body)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await cache_keys(redis_client, gateway) == before


async def test_a_body_of_exactly_16_kib_is_accepted(gateway, redis_client):
    await warm(gateway, redis_client)
    valid = notice(gateway.fixtures["ordinary"])
    body = valid + b" " * (16 * 1024 - len(valid))
    response = await send(gateway, body)
    assert response.status_code == 202, response.text
    assert await keys_of(redis_client, gateway, "ordinary") == set()


async def test_only_post_is_routed(gateway):
    response = await gateway.client.get("/notices/council")
    assert response.status_code == 405


@pytest.mark.parametrize(("offset", "status"), [(-300, 202), (300, 202), (-301, 401),
                                                (301, 401)])
async def test_the_window_edges_on_an_injected_clock(gateway, redis_client, offset, status):
    frozen = 1_700_000_000
    app = Starlette(routes=[Route("/notices/{connector}", NoticeEndpoint(clock=lambda: frozen)
                                  .handle, methods=["POST"])])
    app.state.runtime = gateway.runtime
    await warm(gateway, redis_client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway.test") as client:
        response = await send(gateway, notice(gateway.fixtures["ordinary"]),
                              timestamp=frozen + offset, client=client)
    assert response.status_code == status
    remaining = await keys_of(redis_client, gateway, "ordinary")
    assert len(remaining) == (0 if status == 202 else len(SYSTEMS))


async def test_a_purge_the_cache_may_have_missed_is_503_so_the_sender_retries(
        sims, jwks, signing_key, caplog):
    config = connectors_config(sims, council={"notice_secret": COUNCIL_SECRET})
    unreachable = {"redis_url": "redis://127.0.0.1:9/0", "redis_timeout_seconds": 0.2}
    async with running_gateway(sims, jwks, signing_key, connectors=config,
                               cache=unreachable) as gateway:
        response = await send(gateway, notice(gateway.fixtures["ordinary"]))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    [line] = notice_lines(caplog)
    assert "connector=council outcome=refused:cache-unavailable" in line


async def test_an_unexpected_failure_is_masked_and_logged_without_its_message(
        gateway, monkeypatch, caplog):
    nhs = gateway.fixtures["ordinary"]

    async def broken(nhs_number: str) -> None:
        raise ValueError(f"cannot purge {nhs_number}")

    monkeypatch.setattr(gateway.runtime.services.sources, "forget", broken)
    response = await send(gateway, notice(nhs))
    assert response.status_code == 500
    assert response.json()["errors"][0] == {"message": "Internal error.",
                                            "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
    assert nhs not in response.text
    [line] = notice_lines(caplog)
    assert "connector=council outcome=failed:ValueError at " in line
