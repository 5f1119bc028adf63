"""Validation and normalisation of findChildren's search input."""

import datetime as dt

import pytest

from gateway.core.errors import BadUserInputError
from gateway.lookup.search import parse_search

TODAY = dt.date(2026, 11, 24)
DOB = dt.date(2015, 3, 2)


def parse(nhs=None, family=None, given=None, dob=None, postcode=None):
    return parse_search(nhs, family, given, dob, postcode, TODAY)


def test_nhs_number_with_spaces_is_normalised():
    assert parse(nhs="943 476 5919").nhs_number == "9434765919"


@pytest.mark.parametrize("nhs", [
    "9434765918", "123", "94347659190", "abcdefghij",
    # full-width digits: isdigit() is true for them, so they must be refused explicitly
    "\uff19\uff14\uff13\uff14\uff17\uff16\uff15\uff19\uff11\uff19"])
def test_bad_nhs_numbers(nhs):
    with pytest.raises(BadUserInputError) as info:
        parse(nhs=nhs)
    assert info.value.extensions == {"code": "BAD_USER_INPUT", "field": "nhsNumber"}


@pytest.mark.parametrize("kwargs", [
    {"family": "Smith", "dob": DOB},
    {"family": "Smith", "given": "Amy"},
    {"given": "Amy", "dob": DOB, "postcode": "LS6 2AB"},
    {},
])
def test_incomplete_demographics(kwargs):
    with pytest.raises(BadUserInputError):
        parse(**kwargs)


def test_demographics_are_normalised():
    search = parse(family="  SMITH ", dob=DOB, postcode="ls6 2ab").demographics
    assert search is not None
    assert (search.family_name, search.postcode, search.given_name) == ("smith", "LS62AB", None)


@pytest.mark.parametrize("kwargs", [
    {"family": "Smith", "dob": DOB, "postcode": "NOT A CODE"},
    {"family": "x" * 101, "dob": DOB, "given": "Amy"},
    {"family": "Smith", "dob": TODAY + dt.timedelta(days=1), "given": "Amy"},
])
def test_bad_values(kwargs):
    with pytest.raises(BadUserInputError):
        parse(**kwargs)
