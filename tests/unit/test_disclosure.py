"""The subject access rule (`gateway.accountability.disclosure`): plain tables, no I/O."""

import datetime as dt

import pytest

from gateway.accountability.audit import AuditEvent
from gateway.accountability.disclosure import CASE_OPEN, disclose, is_release, withheld_reason
from gateway.settings import SubjectAccessSettings

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
DEFAULT = SubjectAccessSettings()
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


def event(purpose="SAFEGUARDING", age=DAY, *, action="child.read", outcome="released",
          released=("Child.name",), organisation="council-42", case="CS/1"):
    return AuditEvent(at=NOW - age, request_id="r", action=action, outcome=outcome,
                      subject="u", organisation=organisation, client_id="c", purpose=purpose,
                      case_reference=case, child=None, released=released)


@pytest.mark.parametrize(("purpose", "age", "reason"), [
    ("SAFEGUARDING", DAY, "SAFEGUARDING within 183 days"),
    ("SAFEGUARDING", dt.timedelta(0), "SAFEGUARDING within 183 days"),
    ("SAFEGUARDING", -DAY, "SAFEGUARDING within 183 days"),      # dated ahead: a skewed clock
    ("SAFEGUARDING", 183 * DAY - SECOND, "SAFEGUARDING within 183 days"),
    ("SAFEGUARDING", 183 * DAY, None),                           # the period is over
    ("SAFEGUARDING", 1000 * DAY, None),
    ("EDUCATION", DAY, None),
    ("EARLY_HELP", DAY, None),
    ("YOUTH_JUSTICE", DAY, None),
    (None, DAY, None),
])
def test_the_time_rule(purpose, age, reason):
    assert withheld_reason(event(purpose, age), NOW, DEFAULT) == reason


@pytest.mark.parametrize(("settings", "purpose", "age", "reason"), [
    (SubjectAccessSettings(withhold_days=0), "SAFEGUARDING", dt.timedelta(0), None),
    (SubjectAccessSettings(withhold_days=30), "SAFEGUARDING", 31 * DAY, None),
    (SubjectAccessSettings(withhold_purposes=("SAFEGUARDING", "YOUTH_JUSTICE")),
     "YOUTH_JUSTICE", DAY, "YOUTH_JUSTICE within 183 days"),
    (SubjectAccessSettings(withhold_purposes=()), "SAFEGUARDING", DAY, None),
])
def test_the_rule_as_configured(settings, purpose, age, reason):
    assert withheld_reason(event(purpose, age), NOW, settings) == reason


@pytest.mark.parametrize(("purpose", "case", "organisation", "reason"), [
    ("SAFEGUARDING", "CS/1", "council-42", CASE_OPEN),
    ("SAFEGUARDING", "CS/1", "police-7", None),      # the same reference at another body
    ("SAFEGUARDING", "CS/2", "council-42", None),
    ("SAFEGUARDING", None, "council-42", None),
    ("EDUCATION", "CS/1", "council-42", None),       # only the purposes the rule names
])
def test_an_open_case_keeps_an_old_release_withheld(purpose, case, organisation, reason):
    old = event(purpose, 400 * DAY, case=case, organisation=organisation)
    assert withheld_reason(old, NOW, DEFAULT, {("council-42", "CS/1")}) == reason


@pytest.mark.parametrize(("kwargs", "listed"), [
    ({}, True),
    ({"outcome": "refused"}, False),
    ({"outcome": "not_found", "released": ()}, False),
    ({"released": ()}, False),
    ({"action": "access_report.read", "released": ("Query.accessReport",)}, False),
    ({"action": "children.search"}, True),
])
def test_what_a_report_lists(kwargs, listed):
    assert is_release(event(**kwargs)) is listed


def test_the_subject_gets_the_newest_shown_entries_the_officer_everything():
    log = [event("SAFEGUARDING", 1 * DAY), event("EDUCATION", 2 * DAY),
           event("SAFEGUARDING", 3 * DAY, outcome="refused"), event("SAFEGUARDING", 4 * DAY),
           event("HEALTH_CARE", 5 * DAY), event("EDUCATION", 6 * DAY)]
    subject = disclose(log, subject=True, now=NOW, settings=DEFAULT, limit=2)
    assert [e.event for e in subject] == [log[1], log[4]]
    assert all(e.withheld is None for e in subject)
    officer = disclose(log, subject=False, now=NOW, settings=DEFAULT, limit=10)
    assert [(e.event, e.withheld is not None) for e in officer] == [
        (log[0], True), (log[1], False), (log[3], True), (log[4], False), (log[5], False)]


def test_unknown_purposes_are_refused_in_configuration():
    with pytest.raises(ValueError, match="withhold_purposes"):
        SubjectAccessSettings(withhold_purposes=("SAFEGUARDING", "GOSSIP"))
    with pytest.raises(ValueError, match="withhold_days"):
        SubjectAccessSettings(withhold_days=-1)
