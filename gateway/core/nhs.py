"""NHS numbers: ten digits whose last is a Modulus 11 check digit."""

from __future__ import annotations

import operator

__all__ = ["check_digit", "is_valid_nhs_number", "normalise_nhs_number"]

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no valid number has them (remainder 10)."""
    if len(first_nine) != len(_WEIGHTS):
        raise ValueError("nine digits are needed")
    total = sum(map(operator.mul, map(int, first_nine), _WEIGHTS))  # no generator to resume
    digit = 11 - total % 11
    if digit == 11:
        return 0
    return None if digit == 10 else digit


def normalise_nhs_number(raw: str) -> str:
    """Strip the spaces and hyphens people write inside NHS numbers ("999 123 4567")."""
    return raw.replace(" ", "").replace("-", "")


def is_valid_nhs_number(value: str) -> bool:
    """True for exactly ten ASCII digits with a correct Modulus 11 check digit."""
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    return check_digit(value[:9]) == int(value[9])
