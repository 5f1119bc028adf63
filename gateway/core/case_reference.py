"""Case references are references, not notes: a configured format, and never personal data.

A case reference is written to the append-only audit log, which can never be
erased. So it must look like what a case system issues (by default: 3 to 40
letters, digits, `/`, `-` and `.`, at least one digit, starting with a letter
or digit) and must not be an NHS number, a postcode or a date, whatever the
configured format allows. Anything else is refused before anything is
recorded, with a message naming the rule and never the value.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from gateway.core.errors import BadUserInputError
from gateway.core.nhs import is_valid_nhs_number

__all__ = ["DEFAULT_CASE_REFERENCE_PATTERN", "CaseReferenceRule"]

DEFAULT_CASE_REFERENCE_PATTERN = r"(?=[^0-9]*[0-9])[A-Za-z0-9][A-Za-z0-9/.\-]{2,39}"
"""Letters, digits, `/`, `.` and `-`; 3 to 40 characters; at least one digit (a name has none)."""

_POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}")
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d%m%Y", "%Y%m%d")


def _is_date(value: str) -> bool:
    # strptime is lenient ("123456" reads as 1234-05-06), so only full-length dates count.
    if len(value) not in (8, 10):
        return False
    for layout in _DATE_FORMATS:
        try:
            dt.datetime.strptime(value, layout)  # noqa: DTZ007 -- only asks "is this a date"
        except ValueError:
            continue
        return True
    return False


@dataclass(frozen=True, slots=True)
class CaseReferenceRule:
    """The configured format of case references, and what is refused whatever it says."""

    pattern: str = DEFAULT_CASE_REFERENCE_PATTERN
    description: str = ("3 to 40 letters, digits, '/', '.' or '-', with at least one digit, "
                        "as the case system issued it")

    def __post_init__(self) -> None:
        re.compile(self.pattern)  # a bad pattern fails at start-up, not per request

    def check(self, raw: str | None) -> str | None:
        """The reference, trimmed (None if absent or blank); BAD_USER_INPUT if not one."""
        if raw is None or not raw.strip():
            return None
        value = raw.strip()
        if not re.fullmatch(self.pattern, value):
            raise BadUserInputError(
                f"caseReference must be a case system's reference ({self.description}); "
                "never a name or other personal data.", field="caseReference")
        compact = re.sub(r"[\s/.\-]", "", value)
        if is_valid_nhs_number(compact) or _POSTCODE.fullmatch(compact.upper()) or _is_date(
                value):
            raise BadUserInputError(
                "caseReference looks like personal data (an NHS number, a postcode or a date); "
                "give the case system's reference instead.", field="caseReference")
        return value
