"""Case references are references, not notes: the default format, and personal data refused."""

import pytest

from gateway.core.case_reference import CaseReferenceRule
from gateway.core.errors import BadUserInputError

RULE = CaseReferenceRule()


@pytest.mark.parametrize("reference", [
    "CASE-1", "CS/2026/00123", "LA-12345", "EH.2026.7", "123456", "yj-000123", "MASH/24/8812",
])
def test_real_case_system_references_are_accepted(reference):
    assert RULE.check(f"  {reference} ") == reference


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_no_reference_is_none(blank):
    assert RULE.check(blank) is None


@pytest.mark.parametrize(("value", "rule"), [
    ("Amy Hill", "case system's reference"),          # a name (space, no digit)
    ("Hill", "case system's reference"),              # one word, no digit
    ("Amy Hill 2015", "case system's reference"),     # a name with a year
    ("943 476 5919", "case system's reference"),      # an NHS number, spaced
    ("9434765919", "personal data"),                  # an NHS number
    ("943-476-5919", "personal data"),
    ("LS6 2AB", "case system's reference"),           # a postcode
    ("LS62AB", "personal data"),
    ("ls6-2ab", "personal data"),
    ("2015-03-14", "personal data"),                  # a date of birth
    ("14/03/2015", "personal data"),
    ("Amy: at risk, lives at 1 Elm Road", "case system's reference"),
    ("A" * 40 + "1", "case system's reference"),      # too long
    ("C1", "case system's reference"),                # too short
    ("CASE\t1", "case system's reference"),
])
def test_anything_else_is_refused_naming_the_rule_never_the_value(value, rule):
    with pytest.raises(BadUserInputError) as info:
        RULE.check(value)
    assert rule in info.value.message
    assert info.value.extensions == {"code": "BAD_USER_INPUT", "field": "caseReference"}
    assert value.strip() not in info.value.message


def test_a_configured_format_replaces_the_default_but_not_the_personal_data_checks():
    rule = CaseReferenceRule(r"MOS-[0-9]{6}", "MOS- and six digits")
    assert rule.check("MOS-123456") == "MOS-123456"
    with pytest.raises(BadUserInputError, match="MOS- and six digits"):
        rule.check("CASE-1")
    digits_only = CaseReferenceRule(r"[0-9]{10}", "ten digits")
    with pytest.raises(BadUserInputError, match="personal data"):
        digits_only.check("9434765919")


def test_a_bad_pattern_fails_at_start_up():
    import re

    with pytest.raises(re.error):
        CaseReferenceRule("(unclosed")
