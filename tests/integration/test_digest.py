"""The privacy officer's daily digest: one alert per organisation, counts only, sent once."""

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from gateway.accountability.audit import open_store
from gateway.accountability.digest import Digester, DigestTally, london_day
from gateway.web.cli import main
from tests.integration.harness import ALL_SCOPES, CHILD_QUERY, running_gateway, settings_tree
from tests.integration.test_two_processes import write_config
from tests.limits.support import REDIS_URL, RecordingSink

ORG_A = "council-42"     # the test tokens' default `org`
ORG_B = "school-7"


def _overrides(folder: Path, prefix: str) -> dict[str, dict[str, str]]:
    return {"audit": {"sqlite_path": str(folder / "audit.db"),
                      "checkpoint_file": str(folder / "checkpoints.jsonl")},
            "alerts": {"path": str(folder / "alerts.jsonl")},
            "cache": {"key_prefix": prefix}}


async def _a_day_of_lookups(gateway) -> None:
    """Organisation A: a shielded reveal, a sensitive release, an ordinary lookup, a
    refusal. Organisation B: two lookups of one child."""
    for fixture in ("shielded", "sensitive_consented", "ordinary"):
        body = await gateway.child(fixture)
        assert "errors" not in body, body
    refused = await gateway.child("ordinary", scopes="child.sensitive.read")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other = gateway.token(ALL_SCOPES, org=ORG_B)
    variables = {"id": gateway.id_for(gateway.fixtures["ordinary"]), "purpose": "SAFEGUARDING",
                 "case": "CASE-9"}
    for _ in range(2):
        assert "errors" not in await gateway.gql(CHILD_QUERY, variables, token=other)


def _digests(path: Path) -> list[dict]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [a for a in map(json.loads, lines) if a["kind"] == "organisation_daily_digest"]


async def test_one_digest_per_organisation_with_the_day_s_counts_sent_once(
        sims, jwks, signing_key, tmp_path):
    prefix = f"dg{uuid.uuid4().hex[:10]}:"
    today = london_day(dt.datetime.now(dt.UTC))
    async with running_gateway(sims, jwks, signing_key,
                               **_overrides(tmp_path, prefix)) as gateway:
        await _a_day_of_lookups(gateway)
        sent = await gateway.runtime.digester.send(today)
        again = await gateway.runtime.digester.send(today)
        # A second worker: its own tally and sink, the same Redis and audit log.
        redis = aioredis.Redis.from_url(REDIS_URL)
        store = open_store(gateway.settings.audit, read_only=True)
        other_sink = RecordingSink()
        try:
            secret = gateway.settings.cache.secret.get_secret_value()
            other = Digester(store, DigestTally(other_sink, redis, prefix, secret), redis)
            assert await other.send(today) == []
        finally:
            await store.close()
            await redis.aclose()
    assert again == []
    assert other_sink.alerts == []
    digests = _digests(tmp_path / "alerts.jsonl")
    assert len(sent) == len(digests) == 2
    by_org = {d["organisation"]: d for d in digests}
    assert by_org[ORG_A]["detail"] == {
        "date": today.isoformat(), "lookups": 3, "children": 3, "shield_reveals": 1,
        "sensitive_releases": 1, "refusals": 1}
    assert by_org[ORG_B]["detail"] == {
        "date": today.isoformat(), "lookups": 2, "children": 1, "shield_reveals": 0,
        "sensitive_releases": 0, "refusals": 0}
    for digest in digests:
        assert (digest["subject"], digest["child"], digest["purpose"]) == ("", None, None)
    text = (tmp_path / "alerts.jsonl").read_text()
    assert "user-7" not in text
    assert gateway.fixtures["shielded"] not in text


async def test_the_command_prints_and_sends_a_day_s_digest(sims, jwks, signing_key, tmp_path,
                                                           capsys):
    prefix = f"dg{uuid.uuid4().hex[:10]}:"
    today = london_day(dt.datetime.now(dt.UTC))
    overrides = _overrides(tmp_path, prefix)
    async with running_gateway(sims, jwks, signing_key, **overrides) as gateway:
        await _a_day_of_lookups(gateway)
    config = tmp_path / "gateway.toml"
    write_config(config, settings_tree(sims.urls(), jwks.url, **overrides))
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["alerts", "digest", "--date", today.isoformat(),
                                          "--config", str(config)])
    assert code == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(p["organisation"] for p in printed) == [ORG_A, ORG_B]
    [a] = [p for p in printed if p["organisation"] == ORG_A]
    assert a["detail"]["shield_reveals"] == 1      # flushed to Redis when the gateway closed
    assert a["detail"]["refusals"] == 1
    assert len(_digests(tmp_path / "alerts.jsonl")) == 2
    code = await asyncio.to_thread(main, ["alerts", "digest", "--date", "2001-01-01",
                                          "--print-only", "--config", str(config)])
    assert code == 0
    assert capsys.readouterr().out == ""
    assert len(_digests(tmp_path / "alerts.jsonl")) == 2


async def test_digest_false_sends_none(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key, alerts={"digest": False}) as gateway:
        assert gateway.runtime.digester is None
