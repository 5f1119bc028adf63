"""Property: `accessReport` equals the reference, and a subject cannot tell what was withheld.

Hypothesis draws a child's audit log (oldest first): releases and refusals,
searches and reads of the report itself, under every purpose (and none), by
several organisations, aged from a day in the future (a skewed clock) to
years, clustered near the 183-day period but never within 0.1 day of it (the
gateway's clock runs on while the example is played; `tests/unit/test_disclosure`
holds the exact boundary). The report's limit is drawn small (1 to 6), so it
cuts often. For each example (`tests.property.runner.run_report_case`):

- the `subject.self` report equals the reference's filtered list exactly
  (same entries, same order, same count), and is byte-for-byte the report of a
  twin child whose log never held the withheld releases: no count, order, cut
  or error differs;
- asking for `withheldFromSubject`/`withheldReason` as the subject is FORBIDDEN
  at every entry, whatever was withheld;
- the data protection officer's report is complete, each entry marked as the
  reference says.

Writes go straight to the audit log (the recorder stamps the time now, and
these releases happened in the past). See `test_child_property` for how the
async property runs.
"""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolvers import report
from tests.property.profiles import examples, timeout
from tests.property.runner import ReportCase, run_report_case

SHARE = 0.4
PURPOSES = ("SAFEGUARDING", "EARLY_HELP", "EDUCATION", "HEALTH_CARE", "SOCIAL_CARE",
            "YOUTH_JUSTICE")
RELEASED = ("Child.name", "Child.id", "Child.address", "Child.education", "Child.primaryCare",
            "Child.services", "Child.carers")

ages = st.one_of(
    st.floats(min_value=-1, max_value=182.9),
    st.floats(min_value=183.1, max_value=1500),
    st.sampled_from([0.0, 1.0, 182.5, 183.5, 365.0]),
)


@st.composite
def logged(draw):
    action = draw(st.sampled_from(["child.read", "child.read", "children.search",
                                   "access_report.read"]))
    outcome = draw(st.sampled_from(["released", "released", "released", "refused",
                                    "not_found", "upstream_unavailable"]))
    if action == "access_report.read":
        released = ("Query.accessReport",) if outcome == "released" else ()
    elif outcome == "released":
        released = tuple(sorted(draw(st.sets(st.sampled_from(RELEASED), max_size=3))))
    else:
        released = ()
    purpose = None if action == "access_report.read" else draw(
        st.sampled_from((*PURPOSES, "SAFEGUARDING", "SAFEGUARDING")))
    organisation = draw(st.sampled_from(["council-42", "police-7", "school-3", None]))
    return (draw(ages), action, outcome, purpose, organisation, released)


@st.composite
def report_cases(draw):
    log = draw(st.lists(logged(), max_size=14))
    log.sort(key=lambda entry: -entry[0])  # the log is written oldest first
    return ReportCase(tuple(log), draw(st.integers(min_value=1, max_value=6)), draw(st.booleans()))


@pytest.mark.timeout(timeout(SHARE))
@examples(SHARE)
@given(case=report_cases())
async def test_access_reports_equal_the_reference_and_tip_nobody_off(gateway, case):
    with mock.patch.object(report, "REPORT_LIMIT", case.limit):
        await run_report_case(gateway, case)
