"""Subject access that does not tip off: what a child or parent is not shown, and the DPO is.

Releases older than today are written to the audit log as the recorder would
have written them then (the log keeps whatever time an event carries); the
newest are made through the gateway itself.
"""

import datetime as dt
import uuid

import pytest

from gateway.accountability.audit import AuditEvent, child_pseudonym
from resolvers import report
from tests.integration.harness import running_gateway

SUBJECT = "query($n: String!) { accessReport(nhsNumber: $n) { at organisation purpose fields } }"
OFFICER = ("query($n: String!) { accessReport(nhsNumber: $n) { at organisation purpose fields "
           "withheldFromSubject withheldReason } }")
ASKING = ("query($n: String!) { accessReport(nhsNumber: $n) { purpose withheldFromSubject "
          "withheldReason } }")
NOW = dt.datetime.now(dt.UTC)


async def released(gateway, nhs, purpose, *, days_ago, organisation="council-42",
                   case="CS/2026/1"):
    """A release of `nhs`'s identity under `purpose`, `days_ago` days ago, in the log."""
    secret = gateway.settings.audit.pseudonym_secret.get_secret_value()
    await gateway.runtime.accountability.audit.record([AuditEvent(
        at=NOW - dt.timedelta(days=days_ago), request_id=uuid.uuid4().hex, action="child.read",
        outcome="released", subject="user-9", organisation=organisation, client_id="client-a",
        purpose=purpose, case_reference=case, child=child_pseudonym(secret, nhs),
        released=("Child.name",))])


def as_subject(gateway, nhs):
    return gateway.token("subject.self", subject_nhs_number=nhs)


async def subject_report(gateway, nhs, query=SUBJECT):
    return await gateway.gql(query, {"n": nhs}, token=as_subject(gateway, nhs))


async def officer_report(gateway, nhs):
    body = await gateway.gql(OFFICER, {"n": nhs}, scopes="audit.read")
    assert "errors" not in body, body
    return body["data"]["accessReport"]


def nhs_numbers(gateway, count):
    """Children of the population that no other test here looks up."""
    return [c.nhs_number for c in gateway.sims.population.children[20:20 + count]]


async def test_a_recent_safeguarding_release_is_kept_from_the_parent_not_the_officer(gateway):
    nhs = gateway.fixtures["ordinary"]
    await released(gateway, nhs, "SAFEGUARDING", days_ago=1)                  # yesterday
    await gateway.child("ordinary", purpose="EDUCATION", fields="name { family }")
    await gateway.child("ordinary", purpose="SAFEGUARDING", fields="name { family }")  # now

    parent = await subject_report(gateway, nhs)
    assert "errors" not in parent
    assert [e["purpose"] for e in parent["data"]["accessReport"]] == ["EDUCATION"]

    officer = await officer_report(gateway, nhs)
    assert [(e["purpose"], e["withheldFromSubject"], e["withheldReason"]) for e in officer] == [
        ("SAFEGUARDING", True, "SAFEGUARDING within 183 days"),
        ("EDUCATION", False, None),
        ("SAFEGUARDING", True, "SAFEGUARDING within 183 days"),
    ]


async def test_a_safeguarding_release_older_than_the_period_is_shown(gateway):
    nhs = gateway.fixtures["school_only"]
    await released(gateway, nhs, "EDUCATION", days_ago=400)      # the log's order: oldest first
    await released(gateway, nhs, "SAFEGUARDING", days_ago=184)
    await released(gateway, nhs, "SAFEGUARDING", days_ago=182)
    parent = (await subject_report(gateway, nhs))["data"]["accessReport"]
    assert [(e["purpose"], e["at"][:10]) for e in parent] == [
        ("SAFEGUARDING", (NOW - dt.timedelta(days=184)).date().isoformat()),
        ("EDUCATION", (NOW - dt.timedelta(days=400)).date().isoformat())]
    officer = await officer_report(gateway, nhs)
    assert [e["withheldFromSubject"] for e in officer] == [True, False, False]
    assert officer[0]["withheldReason"] == "SAFEGUARDING within 183 days"


async def test_only_withheld_releases_read_exactly_as_none_at_all(gateway):
    withheld_only, untouched = nhs_numbers(gateway, 2)
    await released(gateway, withheld_only, "SAFEGUARDING", days_ago=3)
    await released(gateway, withheld_only, "SAFEGUARDING", days_ago=30, organisation="police-7")
    assert len(await officer_report(gateway, withheld_only)) == 2
    first = await subject_report(gateway, withheld_only)
    second = await subject_report(gateway, untouched)
    assert first == second == {"data": {"accessReport": []}}


async def test_asking_for_the_marks_is_forbidden_to_the_subject_whatever_was_withheld(gateway):
    with_enquiry, without = nhs_numbers(gateway, 4)[2:]
    for nhs in (with_enquiry, without):
        await released(gateway, nhs, "EDUCATION", days_ago=10)
    await released(gateway, with_enquiry, "SAFEGUARDING", days_ago=2)
    answers = [await subject_report(gateway, nhs, ASKING) for nhs in (with_enquiry, without)]
    assert answers[0] == answers[1]
    assert answers[0]["data"] == {"accessReport": [
        {"purpose": "EDUCATION", "withheldFromSubject": None, "withheldReason": None}]}
    assert {(tuple(e["path"]), e["extensions"]["code"]) for e in answers[0]["errors"]} == {
        (("accessReport", 0, "withheldFromSubject"), "FORBIDDEN"),
        (("accessReport", 0, "withheldReason"), "FORBIDDEN")}


async def test_the_limit_counts_only_what_the_subject_is_shown(gateway, monkeypatch):
    """Withheld releases never push a shown one off the end of the report."""
    monkeypatch.setattr(report, "REPORT_LIMIT", 2)
    with_enquiry, without = nhs_numbers(gateway, 6)[4:]
    for nhs in (with_enquiry, without):
        for days in (300, 200, 100):
            await released(gateway, nhs, "EDUCATION", days_ago=days)
    for days in (50, 40, 30, 20, 10, 9, 8, 7, 6):  # more than the first read of the log
        await released(gateway, with_enquiry, "SAFEGUARDING", days_ago=days)
    answers = [await subject_report(gateway, nhs, "query($n: String!) { accessReport("
                                    "nhsNumber: $n) { purpose fields } }")
               for nhs in (with_enquiry, without)]
    assert answers[0] == answers[1] == {"data": {"accessReport": [
        {"purpose": "EDUCATION", "fields": ["identity"]}] * 2}}
    assert [e["purpose"] for e in await officer_report(gateway, with_enquiry)] == [
        "SAFEGUARDING"] * 2


@pytest.mark.parametrize(("options", "shown"), [
    ({"withhold_purposes": ["SAFEGUARDING", "YOUTH_JUSTICE"]}, ["EDUCATION"]),
    ({"withhold_days": 0}, ["SAFEGUARDING", "YOUTH_JUSTICE", "EDUCATION"]),
])
async def test_the_rule_is_configured(sims, jwks, signing_key, options, shown):
    async with running_gateway(sims, jwks, signing_key, subject_access=options) as gateway:
        nhs = gateway.fixtures["ordinary"]
        for purpose, days in (("EDUCATION", 9), ("YOUTH_JUSTICE", 5), ("SAFEGUARDING", 1)):
            await released(gateway, nhs, purpose, days_ago=days)
        parent = (await subject_report(gateway, nhs))["data"]["accessReport"]
        assert [e["purpose"] for e in parent] == shown
