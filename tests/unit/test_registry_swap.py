"""The registry's snapshots: swapped atomically, retired connectors closed only after drain."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest

from connectors.manifest import load_manifest
from gateway.cache import CacheSealer, MemoryStore
from gateway.core.facts import PersonName, SourceFacts
from gateway.lookup.registry import ConnectorSet, Registry, System
from gateway.lookup.sources import SourceProvider
from gateway.web.registrations import may_change

NHS = "9990000018"


class FakeConnector:
    """A connector that answers from memory and records its closing."""

    kind = "rest_json"
    can_shield = False
    provides = frozenset({"name", "date_of_birth"})
    cache_ttl = 30.0

    def __init__(self, name: str, family: str = "Smith") -> None:
        self.name = name
        self.family = family
        self.fetches = 0
        self.closed = asyncio.Event()

    async def fetch(self, nhs_number: str) -> SourceFacts | None:
        assert not self.closed.is_set(), "used after close"
        self.fetches += 1
        return SourceFacts(nhs_number, name=PersonName(("Ann",), self.family),
                           date_of_birth=dt.date(2015, 1, 1))

    async def search(self, criteria: object) -> list[SourceFacts]:
        return []

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        self.closed.set()


def system(name: str, connector: FakeConnector, *, timeout: float = 2.0,
           authority: str = "council:testshire") -> System:
    manifest = load_manifest("school").model_copy(update={
        "name": name, "authority": authority, "timeout_seconds": timeout,
        "base_url": "http://127.0.0.1:9"})
    return System(manifest, connector)  # type: ignore[arg-type]


async def closed_soon(connector: FakeConnector, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        await connector.closed.wait()


async def still_open(connector: FakeConnector, registry: Registry) -> bool:
    """Whether `connector` stays open once every pending callback has run."""
    for _ in range(5):
        await asyncio.sleep(0)
    return not connector.closed.is_set() and registry.draining >= 0


async def test_a_request_keeps_the_set_it_took_while_new_requests_get_the_new_one():
    a, b = FakeConnector("a"), FakeConnector("b")
    registry = Registry(ConnectorSet((system("a", a),)), drain_seconds=60)
    lease = registry.take()
    registry.swap(registry.current.with_system(system("b", b)))
    assert list(lease.connector_set.connectors) == ["a"]
    assert list(registry.take().connector_set.connectors) == ["a", "b"]
    assert registry.current.generation == 1
    await registry.close()


async def test_a_removed_connector_closes_only_after_the_last_request_holding_it():
    a, b = FakeConnector("a"), FakeConnector("b")
    registry = Registry(ConnectorSet((system("a", a), system("b", b))), drain_seconds=60)
    first, second = registry.take(), registry.take()
    registry.swap(registry.current.without("b"))
    first.release()
    assert await still_open(b, registry)
    assert registry.draining == 1
    await second.connector_set.connectors["b"].fetch(NHS)  # the request in flight finishes
    second.release()
    second.release()  # idempotent
    await closed_soon(b)
    assert registry.draining == 0
    assert not a.closed.is_set()  # kept by the new set
    await registry.close()
    assert a.closed.is_set()


async def test_a_replaced_connector_is_closed_at_once_when_nobody_holds_it():
    old, new = FakeConnector("a"), FakeConnector("a")
    registry = Registry(ConnectorSet((system("a", old),)), drain_seconds=60)
    registry.swap(registry.current.with_system(system("a", new, timeout=1.5)))
    await closed_soon(old)
    assert registry.current.connectors["a"] is new
    await registry.close()


async def test_a_connector_in_several_retired_sets_waits_for_the_oldest():
    a = FakeConnector("a")
    registry = Registry(ConnectorSet((system("a", a),)), drain_seconds=60)
    oldest = registry.take()
    registry.swap(registry.current.with_system(system("b", FakeConnector("b"))))
    registry.swap(registry.current.without("a"))  # the set in between held nobody
    assert await still_open(a, registry)
    oldest.release()
    await closed_soon(a)
    await registry.close()


async def test_the_drain_limit_closes_a_connector_a_stuck_request_still_holds(caplog):
    a = FakeConnector("a")
    registry = Registry(ConnectorSet((system("a", a),)), drain_seconds=0.05)
    registry.take()  # never released
    registry.swap(registry.current.without("a"))
    await closed_soon(a)
    assert "1 requests still running" in caplog.text
    await registry.close()


async def test_a_lease_may_be_released_from_another_thread():
    a = FakeConnector("a")
    registry = Registry(ConnectorSet((system("a", a),)), drain_seconds=60)
    lease = registry.take()
    registry.swap(registry.current.without("a"))
    thread = threading.Thread(target=lease.release)
    thread.start()
    thread.join()
    await closed_soon(a)
    await registry.close()


class SlowConnector(FakeConnector):
    """Answers only when `go` is set, so a test can swap while a call is running."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def fetch(self, nhs_number: str) -> SourceFacts | None:
        self.started.set()
        await self.go.wait()
        return await super().fetch(nhs_number)


def provider_for(registry: Registry) -> SourceProvider:
    return SourceProvider(registry, MemoryStore(100), CacheSealer("s" * 32, "t:"),
                          lambda: dt.date(2026, 1, 1))


async def test_a_call_in_flight_finishes_on_the_set_it_began_with():
    old, new = SlowConnector("a"), FakeConnector("a", "Jones")
    registry = Registry(ConnectorSet((system("a", old),)), drain_seconds=60)
    sources = provider_for(registry).take()
    call = asyncio.create_task(sources.load([NHS]))
    await old.started.wait()
    registry.swap(registry.current.with_system(system("a", new, timeout=1.5)))
    assert await still_open(old, registry)  # the call holds it
    old.go.set()
    [child] = await call  # "used after close" would have failed it
    assert child.bundle.outcomes[0].status == "ok"
    await closed_soon(old)
    # The same request calls again: its set is closed, so it uses the one in service.
    [again] = await sources.load([NHS])
    assert again.bundle.outcomes[0].facts is not None
    assert new.fetches == 1
    await registry.close()


async def test_a_replaced_system_is_not_served_its_predecessors_cached_answers():
    old, new = FakeConnector("a", "Smith"), FakeConnector("a", "Jones")
    registry = Registry(ConnectorSet((system("a", old),)), drain_seconds=60)
    provider = provider_for(registry)
    [first] = await provider.take().load([NHS])
    [again] = await provider.take().load([NHS])
    assert again.bundle.outcomes[0].from_cache
    registry.swap(registry.current.with_system(system("a", new, timeout=1.5)))
    [after] = await provider.take().load([NHS])
    outcome = after.bundle.outcomes[0]
    assert not outcome.from_cache
    assert outcome.facts is not None
    assert outcome.facts.name is not None
    assert outcome.facts.name.family == "Jones"
    assert first.bundle.outcomes[0].facts is not None
    await registry.close()


async def test_merge_rules_follow_the_set():
    registry = Registry(ConnectorSet((system("a", FakeConnector("a")),),
                                     {"name": ("b",)}), drain_seconds=60)
    registry.swap(registry.current.with_system(system("b", FakeConnector("b"))))
    assert list(registry.current.rules.traits) == ["a", "b"]
    assert registry.current.rules.precedence("name") == ("b", "a")
    with pytest.raises(ValueError, match="names each system once"):
        ConnectorSet((system("a", FakeConnector("a")), system("a", FakeConnector("a"))))
    await registry.close()


def _current(authority: str) -> System:
    return system("x", FakeConnector("x"), authority=authority)


@pytest.mark.parametrize(("claim", "current", "new", "reason"), [
    ("council:leeds", None, "council:leeds", None),
    ("council:leeds", "council:leeds", "council:leeds", None),
    ("council:leeds", "council:leeds", None, None),
    (None, None, "council:leeds", "the token has no authority claim"),
    ("", None, "", "the token has no authority claim"),
    ("council:leeds", "nhs", "council:leeds", "x belongs to nhs, not council:leeds"),
    ("council:leeds", "council:york", None, "x belongs to council:york, not council:leeds"),
    ("council:leeds", None, "council:york",
     "the manifest's authority council:york is not the token's council:leeds"),
    ("council:leeds", "council:leeds", "nhs",
     "the manifest's authority nhs is not the token's council:leeds"),
    ("*", "council:leeds", "council:leeds", "x belongs to council:leeds, not *"),
])
def test_may_change(claim, current, new, reason):
    assert may_change(claim, None if current is None else _current(current), new) == reason


def _with_auth(tmp_path, auth: dict[str, object], authority: str = "council:leeds"):
    from connectors.manifest import manifest_from_dict

    data = {"name": "x", "kind": "fhir_r4", "authority": authority, "provides": ["name"],
            "base_url": "https://x.example", "auth": auth}
    return manifest_from_dict(data, "x.toml")


def test_a_registered_manifest_names_files_only_in_its_authoritys_folder(tmp_path):
    from gateway.web.registrations import files_problem

    mine = tmp_path / "council.leeds"
    mine.mkdir()
    (tmp_path / "council.york").mkdir()
    (mine / "link").symlink_to(tmp_path / "council.york" / "secret")

    def header(path: object) -> object:
        return _with_auth(tmp_path, {"type": "header", "name": "X-Key", "value_file": str(path)})

    assert files_problem(header(mine / "key"), str(tmp_path)) is None
    assert files_problem(_with_auth(tmp_path, {"type": "none"}), None) is None
    assert files_problem(header(mine / "key"), None) == (
        "auth: a registered manifest names no files unless [registry] secrets_dir is set")
    for path in (tmp_path / "council.york" / "secret", mine / ".." / "council.york" / "secret",
                 mine / "link", "/etc/passwd", "council.leeds/key"):
        assert files_problem(header(path), str(tmp_path)) == (
            f"auth: {path} is not in the secrets folder of council:leeds")


async def test_a_removed_system_no_longer_reports_a_circuit():
    from prometheus_client import REGISTRY

    from gateway.telemetry.metrics import UPSTREAM_CIRCUIT_STATE

    def state(name: str) -> float | None:
        return REGISTRY.get_sample_value("contactpoint_upstream_circuit_state",
                                         {"system": name})

    gone, kept = FakeConnector("gone_x"), FakeConnector("kept_x")
    for name in ("gone_x", "kept_x"):
        UPSTREAM_CIRCUIT_STATE.labels(name).set(0)
    registry = Registry(ConnectorSet((system("gone_x", gone), system("kept_x", kept))),
                        drain_seconds=60)
    registry.swap(registry.current.without("gone_x"))
    async with asyncio.timeout(5):  # the reaper unreports right after closing
        while state("gone_x") is not None:
            await asyncio.sleep(0)
    assert gone.closed.is_set()
    assert state("kept_x") == 0
    await registry.close()
    assert state("kept_x") is None  # registered, not configured: gone with the process
