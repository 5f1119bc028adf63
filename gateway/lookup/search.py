"""Validating and normalising `findChildren` input into one of two exact searches."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from gateway.core.errors import BadUserInputError
from gateway.core.facts import DemographicSearch, SourceFacts
from gateway.core.nhs import is_valid_nhs_number, normalise_nhs_number

__all__ = ["ExactSearch", "SearchTerms", "matches", "normalise_name", "normalise_postcode",
           "parse_search"]

_MAX_NAME = 100
_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")
_RULE = ("Search by nhsNumber, or by familyName + dateOfBirth + (givenName or postcode), "
         "all exact.")


@dataclass(frozen=True, slots=True)
class ExactSearch:
    """An NHS number (optionally with attributes that must also match), or demographics."""

    nhs_number: str | None
    demographics: DemographicSearch | None


def normalise_name(raw: str) -> str:
    return " ".join(raw.split()).casefold()


def normalise_postcode(raw: str) -> str:
    return "".join(raw.split()).upper()


def _name(raw: str | None, field: str) -> str | None:
    if raw is None:
        return None
    value = normalise_name(raw)
    if not value or len(value) > _MAX_NAME:
        raise BadUserInputError(f"{field} must be 1 to {_MAX_NAME} characters.", field=field)
    return value


def _postcode(raw: str | None) -> str | None:
    if raw is None:
        return None
    value = normalise_postcode(raw)
    if not _POSTCODE.match(value):
        raise BadUserInputError("postcode is not a UK postcode.", field="postcode")
    return value


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """`findChildren`'s search input as the caller sent it (not yet checked)."""

    nhs_number: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    date_of_birth: dt.date | None = None
    postcode: str | None = None

    def parse(self, today: dt.date) -> ExactSearch:
        """The exact search these terms ask for (raises BAD_USER_INPUT)."""
        return parse_search(self.nhs_number, self.family_name, self.given_name,
                            self.date_of_birth, self.postcode, today)


def parse_search(nhs_number: str | None, family_name: str | None, given_name: str | None,
                 date_of_birth: dt.date | None, postcode: str | None,
                 today: dt.date) -> ExactSearch:
    """Check the search is one the contract allows; raise BAD_USER_INPUT otherwise."""
    family = _name(family_name, "familyName")
    given = _name(given_name, "givenName")
    code = _postcode(postcode)
    if date_of_birth is not None and date_of_birth > today:
        raise BadUserInputError("dateOfBirth is in the future.", field="dateOfBirth")
    demographics = None
    if family and date_of_birth and (given or code):
        demographics = DemographicSearch(family, date_of_birth, given, code)
    if nhs_number is not None:
        nhs = normalise_nhs_number(nhs_number)
        if not is_valid_nhs_number(nhs):
            raise BadUserInputError(
                "nhsNumber must be 10 digits with a valid Modulus 11 check digit.",
                field="nhsNumber")
        partial = DemographicSearch(family or "", date_of_birth or dt.date.min, given, code)
        return ExactSearch(nhs, partial)
    if demographics is None:
        raise BadUserInputError(_RULE)
    return ExactSearch(None, demographics)


def matches(criteria: DemographicSearch, facts: SourceFacts) -> bool:
    """Whether merged facts agree with every attribute the caller gave (empty ones ignored)."""
    name = facts.name
    if criteria.family_name and (name is None or normalise_name(name.family)
                                 != criteria.family_name):
        return False
    if criteria.given_name and (name is None or criteria.given_name not in
                                {normalise_name(g) for g in name.given}):
        return False
    if criteria.date_of_birth != dt.date.min and facts.date_of_birth != criteria.date_of_birth:
        return False
    address = facts.address
    return not criteria.postcode or (
        address is not None and address.postcode is not None
        and normalise_postcode(address.postcode) == criteria.postcode)
