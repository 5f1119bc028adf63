"""Registration without restart, scoped to the council (README "4. Bring it into service").

A fifth system — a second youth justice simulator on its own port — is
registered through `PUT /admin/connectors/{name}` while four tasks query a
child in a loop: no request fails, the new system answers without a restart,
and once removed it is asked no more. A council's token cannot touch the GP's
or another council's system, and every change and refusal is in the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING

import pytest
from aiohttp import web
from yarl import URL

from connectors.errors import ConnectorError
from connectors.manifest import BUILTIN_DIR
from connectors.simulators.knobs import Knobs
from connectors.simulators.youth_justice import create_youth_justice_app
from tests.integration.harness import running_gateway
from tests.integration.test_refusal_audit import logged

if TYPE_CHECKING:
    from pathlib import Path

AUTHORITY = "council:testshire"
MANAGE = "connectors.manage"
NEW = "youth_justice_b"


def manifest(url: str, *, base: str = "youth_justice", name: str = NEW,
             authority: str = AUTHORITY) -> str:
    """A built-in manifest renamed, re-owned and pointed at `url`."""
    text = (BUILTIN_DIR / f"{base}.toml").read_text()
    text = re.sub(r'(?m)^name = "[a-z_]+"', f'name = "{name}"\nbase_url = "{url}"', text,
                  count=1)  # the first: the system's own name, before any table
    return re.sub(r'(?m)^authority = "[^"]+"', f'authority = "{authority}"', text, count=1)


@contextlib.asynccontextmanager
async def fifth_system(population):
    """A second youth justice system on its own OS-picked port."""
    runner = web.AppRunner(create_youth_justice_app(population, Knobs(), seed=99),
                           access_log=None, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield str(URL.build(scheme="http", host="127.0.0.1", port=runner.addresses[0][1]))
    finally:
        await runner.cleanup()


@pytest.fixture
async def system_b(population):
    async with fifth_system(population) as url:
        yield url


@pytest.fixture
def registry_dir(tmp_path):
    return tmp_path / "registry"


# A load of requests from one caller: its rate limit and budgets are not what is tested here.
UNLIMITED = {"burst": 100_000, "subject_requests_per_minute": 1_000_000,
             "client_requests_per_minute": 1_000_000,
             "default": {"subject_per_hour": 1_000_000, "subject_per_day": 1_000_000,
                         "organisation_per_hour": 1_000_000,
                         "organisation_per_day": 1_000_000}}


def options(registry_dir: Path) -> dict[str, object]:
    return {"registry": {"dir": str(registry_dir), "poll_seconds": 0.2}, "budgets": UNLIMITED}


@pytest.fixture
async def admin_gateway(sims, jwks, signing_key, registry_dir):
    async with running_gateway(sims, jwks, signing_key, **options(registry_dir)) as gw:
        yield gw


def council_token(gateway, authority: str | None = AUTHORITY, scopes: str = MANAGE) -> str:
    claims = {} if authority is None else {"authority": authority}
    return gateway.token(scopes, **claims)


async def put(gateway, name: str, text: str, token: str):
    return await gateway.client.put(f"/admin/connectors/{name}", content=text.encode(),
                                    headers={"Authorization": f"Bearer {token}",
                                             "Content-Type": "application/toml"})


async def delete(gateway, name: str, token: str):
    return await gateway.client.delete(f"/admin/connectors/{name}",
                                       headers={"Authorization": f"Bearer {token}"})


def one_line(response) -> str:
    message = response.json()["errors"][0]["message"]
    assert "\n" not in message
    return message


async def until(predicate, seconds: float = 10.0) -> None:
    """Wait (polling the loop, never a fixed sleep) until `predicate()` holds."""
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.02)


class Load:
    """Four tasks asking for one child in a loop, noting every failure and the sources seen."""

    def __init__(self, gateway, fixture: str) -> None:
        self.gateway, self.fixture = gateway, fixture
        self.done = 0
        self.failures: list[str] = []
        self.seen: list[tuple[int, frozenset[str]]] = []
        self.epoch = 0
        """Set by the test after a change: each request notes the epoch it began in."""
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _loop(self) -> None:
        while not self._stop.is_set():
            epoch = self.epoch
            try:
                body = await self.gateway.child(self.fixture)
            except AssertionError as exc:  # not a 200
                self.failures.append(str(exc))
                continue
            statuses = {s["connector"]: s["status"] for s in body["data"]["child"]["sources"]}
            if body.get("errors") or any(v != "ok" for v in statuses.values()):
                self.failures.append(str(body.get("errors") or statuses))
            self.seen.append((epoch, frozenset(statuses)))
            self.done += 1

    def __enter__(self) -> Load:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(4)]
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def past(self, count: int) -> None:
        target = self.done + count
        await until(lambda: self.done >= target or bool(self.failures))


async def test_a_system_registered_and_removed_under_load(admin_gateway, system_b,
                                                          registry_dir):
    gateway = admin_gateway
    token = council_token(gateway)
    with Load(gateway, "multi_service") as load:
        await load.past(20)
        response = await put(gateway, NEW, manifest(system_b), token)
        assert response.status_code == 201, response.text
        version = response.json()["version"]
        assert response.json() == {"name": NEW, "kind": "rest_json", "authority": AUTHORITY,
                                   "version": version, "state": "in service"}
        assert (registry_dir / f"{NEW}.toml").exists()  # kept for a restart
        await until(lambda: any(NEW in seen for _, seen in load.seen))
        await load.past(20)
        connector = gateway.runtime.registry.current.connectors[NEW]

        response = await delete(gateway, NEW, token)
        assert response.status_code == 204, response.text
        assert not (registry_dir / f"{NEW}.toml").exists()
        load.epoch = 1
        await load.past(20)
        await load.stop()
    assert load.failures == []
    # Requests that began after the removal no longer name it (those in flight may).
    after = [seen for epoch, seen in load.seen if epoch == 1]
    assert after
    assert all(NEW not in seen for seen in after)
    body = await gateway.child("multi_service")
    services = body["data"]["child"]["services"]
    assert services
    assert all(NEW not in s for s in str(services).split())
    # The removed connector is closed once the requests that took it have finished —
    # well before the 60 s drain limit.
    await until(lambda: gateway.runtime.registry.draining == 0)
    with pytest.raises(ConnectorError):
        await connector.fetch(gateway.fixtures["multi_service"])
    events = [e for e in await logged(gateway) if e.action.startswith("connector.")]
    assert [(e.action, e.outcome, e.sources) for e in events] == [
        ("connector.register", "applied", (NEW,)), ("connector.remove", "applied", (NEW,))]
    assert events[0].reason == f"authority={AUTHORITY} version={version}"


async def test_the_new_systems_data_appears_with_its_provenance(admin_gateway, system_b):
    gateway = admin_gateway
    fields = "sources { connector status } services { kind name sources }"
    before = await gateway.child("multi_service", fields=fields)
    assert NEW not in str(before)
    response = await put(gateway, NEW, manifest(system_b), council_token(gateway))
    assert response.status_code == 201
    after = (await gateway.child("multi_service", fields=fields))["data"]["child"]
    assert {"connector": NEW, "status": "ok"} in after["sources"]
    assert any(NEW in s["sources"] for s in after["services"])
    ready = (await gateway.client.get("/readyz")).json()
    assert ready["connectors"][NEW]["version"] == response.json()["version"]
    assert ready["connectors"]["gp"]["version"].startswith("sha256:")


@pytest.mark.parametrize(("name", "base", "authority", "reason"), [
    ("gp", "gp", AUTHORITY, "gp belongs to nhs, not council:testshire"),
    ("youth_justice", "youth_justice", AUTHORITY,
     "youth_justice belongs to council:youth_justice, not council:testshire"),
    (NEW, "youth_justice", "council:elsewhere",
     "the manifest's authority council:elsewhere is not the token's council:testshire"),
])
async def test_a_council_cannot_touch_another_authoritys_system(admin_gateway, system_b,
                                                                name, base, authority, reason):
    gateway = admin_gateway
    before = gateway.runtime.registry.current
    text = manifest(system_b, base=base, name=name, authority=authority)
    response = await put(gateway, name, text, council_token(gateway))
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert one_line(response) == reason
    assert gateway.runtime.registry.current is before
    if name != NEW:
        response = await delete(gateway, name, council_token(gateway))
        assert response.status_code == 403
        assert one_line(response) == reason
    events = [e for e in await logged(gateway) if e.action.startswith("connector.")]
    assert events
    assert all(e.outcome == "refused" for e in events)
    assert events[0].action == "connector.register"
    assert events[0].reason == f"{name}: {reason}"
    assert events[0].subject != "-"
    assert events[0].client_id == gateway.client_id


@pytest.mark.parametrize(("claims", "reason"), [
    ({"scopes": "child.identity.read"}, "the token lacks the scope connectors.manage"),
    ({"authority": None}, "the token has no authority claim"),
])
async def test_a_token_must_hold_the_scope_and_an_authority(admin_gateway, system_b, claims,
                                                            reason):
    response = await put(admin_gateway, NEW, manifest(system_b),
                         council_token(admin_gateway, **claims))
    assert (response.status_code, one_line(response)) == (403, reason)
    assert NEW not in admin_gateway.runtime.registry.current.connectors


async def test_no_token_is_unauthenticated(admin_gateway, system_b):
    response = await admin_gateway.client.put(f"/admin/connectors/{NEW}",
                                              content=manifest(system_b).encode())
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_invalid_manifest_is_refused_in_one_line(admin_gateway, system_b):
    gateway = admin_gateway
    text = manifest(system_b).replace('kind = "programme"', 'typ = "programme"')
    response = await put(gateway, NEW, text, council_token(gateway))
    assert response.status_code == 400
    assert one_line(response).startswith(f"manifest {NEW}.toml: mapping.services")
    response = await put(gateway, "other_name", manifest(system_b), council_token(gateway))
    assert (response.status_code, one_line(response)) == (
        400, "manifest other_name.toml: name: 'youth_justice_b' is not the name registered, "
             "'other_name'")
    response = await put(gateway, NEW, "name = [", council_token(gateway))
    assert response.status_code == 400
    assert one_line(response).startswith(f"manifest {NEW}.toml: not valid TOML")
    events = [e for e in await logged(gateway) if e.action == "connector.register"]
    assert [e.outcome for e in events] == ["bad_request"] * 3


async def test_an_unhealthy_system_is_not_registered(admin_gateway, population, registry_dir):
    gateway = admin_gateway
    async with fifth_system(population) as url:
        pass  # the port is closed again: nothing answers there
    response = await put(gateway, NEW, manifest(url), council_token(gateway))
    assert response.status_code == 422
    assert one_line(response) == (
        f"{NEW} failed its health check (ConnectorConnectionError): not registered")
    assert NEW not in gateway.runtime.registry.current.connectors
    assert not (registry_dir / f"{NEW}.toml").exists()
    listed = await gateway.client.get(
        "/admin/connectors", headers={"Authorization": f"Bearer {council_token(gateway)}"})
    assert NEW not in {c["name"] for c in listed.json()["connectors"]}
    events = [e for e in await logged(gateway) if e.action == "connector.register"]
    assert [(e.outcome, e.reason) for e in events] == [("refused", f"{NEW}: {one_line(response)}")]


async def test_a_configured_system_is_replaced_but_not_removed(admin_gateway, sims):
    gateway = admin_gateway
    token = council_token(gateway, "council:youth_justice")
    text = manifest(sims.youth_justice.url, name="youth_justice",
                    authority="council:youth_justice").replace("timeout_seconds = 2.0",
                                                               "timeout_seconds = 1.5")
    old_version = gateway.runtime.registry.current.versions["youth_justice"]
    response = await put(gateway, "youth_justice", text, token)
    assert response.status_code == 200, response.text
    assert response.json()["version"] != old_version
    assert list(gateway.runtime.connectors) == ["gp", "school", "council", "youth_justice"]
    response = await delete(gateway, "youth_justice", token)
    assert response.status_code == 403
    assert "only the operator removes it" in one_line(response)


async def test_registrations_survive_a_restart_and_reach_other_workers(
        sims, jwks, signing_key, system_b, registry_dir):
    async with running_gateway(sims, jwks, signing_key, **options(registry_dir)) as first, \
            running_gateway(sims, jwks, signing_key, **options(registry_dir)) as second:
        response = await put(first, NEW, manifest(system_b), council_token(first))
        assert response.status_code == 201
        # The other worker sees the file, checks the system's health and swaps it in.
        await until(lambda: NEW in second.runtime.registry.current.connectors)
        body = await second.child("ordinary", fields="sources { connector status }")
        assert {"connector": NEW, "status": "ok"} in body["data"]["child"]["sources"]
        assert (await delete(first, NEW, council_token(first))).status_code == 204
        await until(lambda: NEW not in second.runtime.registry.current.connectors)
        assert (await put(first, NEW, manifest(system_b), council_token(first))).status_code \
            == 201
    async with running_gateway(sims, jwks, signing_key, **options(registry_dir)) as restarted:
        assert NEW in restarted.runtime.registry.current.connectors
        assert restarted.runtime.registry.current.get(NEW).authority == AUTHORITY


async def test_the_admin_routes_are_off_without_a_registry_dir(gateway, system_b):
    response = await put(gateway, NEW, manifest(system_b), council_token(gateway))
    assert response.status_code == 404


async def test_no_audit_no_change(admin_gateway, system_b, registry_dir, monkeypatch):
    from gateway.core.errors import AuditUnavailableError

    async def unavailable(events):
        raise AuditUnavailableError

    monkeypatch.setattr(admin_gateway.runtime.accountability.audit, "record", unavailable)
    response = await put(admin_gateway, NEW, manifest(system_b), council_token(admin_gateway))
    assert (response.status_code, one_line(response)) == (
        503, "the audit log is unavailable: nothing changed")
    assert NEW not in admin_gateway.runtime.registry.current.connectors
    assert list(registry_dir.iterdir()) == []
