"""CP-IS style notifications: what is told, to whom, once per child, organisation and day.

The real outbox (a SQLite file in a temporary folder) keeps the messages; the systems
in service are a small table (`Table`), the alert sink a list.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from gateway.accountability.audit import child_pseudonym
from gateway.accountability.notes import ChildAccess
from gateway.accountability.notifications import (
    OUTBOX_KIND,
    PAYLOAD_KEYS,
    Notifications,
    NotificationSender,
    field_groups,
    protected,
)
from gateway.accountability.outbox import Message, Outbox, OutboxRetryError
from gateway.core.caller import Caller
from gateway.core.facts import ProtectionStatus
from gateway.settings import NotificationSettings

SECRET = "test-audit-secret-" + "a" * 32
NHS = "9990000018"
OTHER_NHS = "9990000026"
PLAN = ProtectionStatus(child_protection_plan=True, looked_after=False,
                        responsible_authority="council:leeds")
RELEASED = {"Child.name", "Child.address", "Child.services", "Carer.address"}
# 09:00 in London (BST) on 1 July, and 23:30 UTC the same day: already 2 July in London.
MORNING = dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)
LATE = dt.datetime(2026, 7, 1, 23, 30, tzinfo=dt.UTC)


def caller(organisation: str | None = "org-a", subject: str = "user-7") -> Caller:
    return Caller(subject=subject, client_id="client-a", organisation=organisation,
                  scopes=frozenset(), amr=frozenset({"mfa"}), expires_at=0,
                  roles=frozenset({"social-worker", "duty"}))


def access(nhs: str = NHS, protection: ProtectionStatus | None = PLAN, *,
           action: str = "child.read", outcome: str = "released",
           released: set[str] | None = None) -> ChildAccess:
    return ChildAccess(action, "SAFEGUARDING", "CASE-1", nhs, outcome=outcome,
                       released=set(RELEASED if released is None else released),
                       protection=protection)


class Table:
    """The systems in service that take notifications: authority -> what they answer."""

    def __init__(self, *authorities: str) -> None:
        self.authorities = set(authorities)
        self.posted: list[tuple[str, dict, str]] = []

    def reachable(self, authority: str) -> bool:
        return authority in self.authorities

    async def post(self, authority: str, payload: dict, key: str) -> str | None:
        self.posted.append((authority, payload, key))
        return f"REF-{len(self.posted)}"


class Alerts:
    def __init__(self) -> None:
        self.alerts: list = []

    async def emit(self, alert) -> None:
        self.alerts.append(alert)

    async def close(self) -> None:
        pass


@pytest.fixture
async def outbox(tmp_path):
    box = Outbox(str(tmp_path / "outbox.db"), SECRET, poll_seconds=0.05)  # short back-off
    yield box
    await box.close()


def notifications(outbox, table=None, alerts=None, **settings) -> Notifications:
    return Notifications(outbox, NotificationSettings(**settings), SECRET,
                         lambda nhs: child_pseudonym(SECRET, nhs), alerts or Alerts(),
                         table or Table("council:leeds"), lambda subject: "p" * 16)


async def delivered(outbox, table) -> list[tuple[str, dict, str]]:
    """Every message in the outbox, handed to a sender posting to `table`."""
    outbox.handle(OUTBOX_KIND, NotificationSender(table))
    await outbox.drain()
    return table.posted


async def test_the_payload_says_who_looked_when_why_and_what_and_nothing_more(outbox):
    table = Table("council:leeds")
    await notifications(outbox, table).notify(caller(), "r1", [access()], MORNING)
    [(authority, payload, key)] = await delivered(outbox, table)
    assert authority == "council:leeds"
    assert set(payload) == PAYLOAD_KEYS
    assert payload == {"nhs_number": NHS, "organisation": "org-a",
                       "roles": ["duty", "social-worker"], "purpose": "SAFEGUARDING",
                       "fields": ["contact", "identity", "services"],
                       "at": MORNING.isoformat()}
    assert "user-7" not in repr(payload)
    assert len(key) == 32  # the outbox message id: the idempotency key


async def test_the_looker_is_named_only_when_configured(outbox):
    table = Table("council:leeds")
    await notifications(outbox, table, include_subject=True).notify(
        caller(), "r1", [access()], MORNING)
    [(_, payload, _)] = await delivered(outbox, table)
    assert set(payload) == PAYLOAD_KEYS | {"subject"}
    assert payload["subject"] == "user-7"


async def test_one_per_child_organisation_and_london_day(outbox):
    table = Table("council:leeds")
    notify = notifications(outbox, table).notify
    await notify(caller(), "r1", [access(), access()], MORNING)        # twice in one request
    await notify(caller(), "r2", [access()], MORNING + dt.timedelta(hours=8))
    await notify(caller("org-b"), "r3", [access()], MORNING)           # another organisation
    await notify(caller(), "r4", [access(OTHER_NHS)], MORNING)         # another child
    await notify(caller(), "r5", [access()], LATE)                     # 2 July in London
    posted = await delivered(outbox, table)
    assert sorted((p["organisation"], p["nhs_number"], p["at"]) for _, p, _ in posted) == sorted([
        ("org-a", NHS, MORNING.isoformat()), ("org-b", NHS, MORNING.isoformat()),
        ("org-a", OTHER_NHS, MORNING.isoformat()), ("org-a", NHS, LATE.isoformat())])


async def test_the_dedup_key_names_nobody_in_clear(outbox):
    key = notifications(outbox).dedup_key(NHS, "org-a", MORNING)
    assert NHS not in key
    assert "org-a" not in key
    assert "2026" not in key
    assert key != notifications(outbox).dedup_key(NHS, "org-a", LATE)


@pytest.mark.parametrize("released_access", [
    access(protection=None),                                                  # nothing stated
    access(protection=ProtectionStatus(False, False, "council:leeds")),       # neither
    access(outcome="refused", released=set()),                                # nothing released
    access(outcome="released", released=set()),
    access(action="children.search"),                                         # a match only
])
async def test_nothing_is_told_unless_a_protected_childs_record_was_released(
        outbox, released_access):
    assert not protected(released_access)
    table = Table("council:leeds")
    await notifications(outbox, table).notify(caller(), "r1", [released_access], MORNING)
    assert await delivered(outbox, table) == []


async def test_a_looked_after_child_is_told_too(outbox):
    table = Table("council:leeds")
    status = ProtectionStatus(False, True, "council:leeds")
    await notifications(outbox, table).notify(caller(), "r1", [access(protection=status)],
                                              MORNING)
    assert len(await delivered(outbox, table)) == 1


async def test_disabled_tells_nobody(outbox):
    table = Table("council:leeds")
    await notifications(outbox, table, enabled=False).notify(caller(), "r1", [access()],
                                                             MORNING)
    assert await delivered(outbox, table) == []


async def test_an_authority_with_no_endpoint_is_alerted_once_and_kept(outbox):
    table, alerts = Table(), Alerts()
    notify = notifications(outbox, table, alerts).notify
    await notify(caller(), "r1", [access()], MORNING)
    await notify(caller(), "r2", [access()], MORNING)
    [alert] = alerts.alerts
    assert (alert.kind, alert.detail) == ("responsible_authority_unreachable",
                                          {"reason": "no endpoint"})
    assert alert.child == child_pseudonym(SECRET, NHS)
    assert await delivered(outbox, table) == []          # retried later, not dropped
    table.authorities.add("council:leeds")               # the council registers its system
    outbox.handle(OUTBOX_KIND, NotificationSender(table))
    async with asyncio.timeout(5):                       # due after its back-off
        while not table.posted:
            await outbox.drain()
            await asyncio.sleep(0.02)
    assert len(table.posted) == 1


async def test_no_stated_authority_is_alerted_and_nothing_queued(outbox):
    table, alerts = Table("council:leeds"), Alerts()
    status = ProtectionStatus(True, False, None)
    await notifications(outbox, table, alerts).notify(caller(), "r1",
                                                      [access(protection=status)], MORNING)
    assert [a.detail for a in alerts.alerts] == [{"reason": "not stated"}]
    assert await delivered(outbox, table) == []


async def test_the_sender_retries_while_no_system_takes_notifications():
    table = Table()
    sender = NotificationSender(table)
    with pytest.raises(OutboxRetryError):
        await sender(Message("m1", OUTBOX_KIND, "council:leeds", {}, 0))
    table.authorities.add("council:leeds")
    assert await sender(Message("m1", OUTBOX_KIND, "council:leeds", {"a": 1}, 1)) == "REF-1"
    assert table.posted == [("council:leeds", {"a": 1}, "m1")]


def test_field_groups_follow_the_releasing_scope():
    assert field_groups({"Child.name", "Child.protection", "Service.contact",
                         "Child.primaryCare", "Query.unknown"}) == [
        "health", "identity", "protection", "services"]


async def test_an_organisation_less_token_is_named_by_its_client(outbox):
    table = Table("council:leeds")
    await notifications(outbox, table).notify(caller(None), "r1", [access()], MORNING)
    [(_, payload, _)] = await delivered(outbox, table)
    assert payload["organisation"] == "client:client-a"
