"""Change notices, the pure parts: signing, header parsing, the time window, the body."""

import json
from pathlib import Path

import pytest

from gateway.core.errors import BadUserInputError
from gateway.core.nhs import check_digit
from gateway.web.notices import (
    MAX_BODY_BYTES,
    MAX_NHS_NUMBERS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    notice_signature,
    parse_notice,
    parse_signatures,
    parse_timestamp,
    sign_notice,
    signature_matches,
    within_window,
)

SECRET = "council-notice-secret-" + "n" * 32
OTHER = "gp-notice-secret-" + "g" * 32
BODY = b'{"type":"changed","nhsNumbers":["9434765919"]}'
# Computed independently: printf '1700000000.<BODY>' | openssl dgst -sha256 -hmac "$SECRET"
VECTOR = "4c0705e0aa73cd600814d836f8badb270661fd66fb23caa74aedd5787a86bf89"
HEX = "a" * 64


def numbers(count: int) -> list[str]:
    found: list[str] = []
    first_nine = 999_000_001
    while len(found) < count:
        digit = check_digit(str(first_nine))
        if digit is not None:
            found.append(f"{first_nine}{digit}")
        first_nine += 1
    return found


def notice(nhs_numbers: object, **extra: object) -> bytes:
    return json.dumps({"type": "changed", "nhsNumbers": nhs_numbers, **extra}).encode()


def test_signature_matches_the_published_vector():
    assert notice_signature(SECRET, 1_700_000_000, BODY) == VECTOR


def test_the_readme_publishes_the_same_vector():
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    published = f"`{SECRET}`, timestamp `1700000000`, body `{BODY.decode()}` give `v1={VECTOR}`"
    assert published in readme


def test_sign_notice_gives_both_headers_and_they_verify():
    headers = sign_notice(SECRET, BODY, 1_700_000_000)
    assert headers == {TIMESTAMP_HEADER: "1700000000", SIGNATURE_HEADER: f"v1={VECTOR}"}
    timestamp = parse_timestamp(headers[TIMESTAMP_HEADER])
    digests = parse_signatures(headers[SIGNATURE_HEADER])
    assert timestamp == 1_700_000_000
    assert digests == (VECTOR,)
    assert signature_matches(SECRET, timestamp, BODY, digests)


@pytest.mark.parametrize(("value", "expected"), [
    ("1700000000", 1_700_000_000),
    ("0", 0),
    ("999999999999", 999_999_999_999),
    (None, None),
    ("", None),
    ("abc", None),
    ("-5", None),
    ("+5", None),
    ("1.5", None),
    ("1e9", None),
    (" 1700000000", None),
    ("1700000000 ", None),
    ("01700000000", None),
    ("1000000000000", None),
    ("\u0661\u0667\u0660\u0660", None),  # Arabic-Indic digits: isdigit() says yes
    ("1700000000\n", None),
])
def test_timestamp_header(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (f"v1={HEX}", (HEX,)),
    (f"v1={HEX},v1={'b' * 64}", (HEX, "b" * 64)),
    (f" v1={HEX} , v1={'b' * 64} ", (HEX, "b" * 64)),
    (",".join([f"v1={HEX}"] * 8), (HEX,) * 8),
    (",".join([f"v1={HEX}"] * 9), None),
    (None, None),
    ("", None),
    (HEX, None),
    ("v1=", None),
    (f"v1={HEX.upper()}", None),
    (f"v1={HEX[:-1]}", None),
    (f"v1={HEX}0", None),
    (f"v2={HEX}", None),
    (f"V1={HEX}", None),
    (f"v1={HEX},", None),
    (f"v1={HEX},v2={HEX}", None),
    (f"sha256={HEX}", None),
])
def test_signature_header(value, expected):
    assert parse_signatures(value) == expected


@pytest.mark.parametrize(("offset", "inside"), [
    (0, True), (300, True), (-300, True), (300.001, False), (-300.001, False),
    (301, False), (-301, False), (86_400, False),
])
def test_time_window_is_300_seconds_either_way(offset, inside):
    assert within_window(1_700_000_000, 1_700_000_000 + offset) is inside


def test_any_one_matching_signature_suffices():
    good = notice_signature(SECRET, 1_700_000_000, BODY)
    assert signature_matches(SECRET, 1_700_000_000, BODY, (HEX, good))
    assert signature_matches(SECRET, 1_700_000_000, BODY, (good, HEX))


@pytest.mark.parametrize(("secret", "timestamp", "body"), [
    (OTHER, 1_700_000_000, BODY),
    (SECRET, 1_700_000_001, BODY),
    (SECRET, 1_700_000_000, BODY + b" "),
    (SECRET, 1_700_000_000, BODY.replace(b"9434765919", b"9990000018")),
])
def test_signature_binds_secret_timestamp_and_every_body_byte(secret, timestamp, body):
    digest = notice_signature(SECRET, 1_700_000_000, BODY)
    assert not signature_matches(secret, timestamp, body, (digest,))


def test_no_signature_matches_nothing():
    assert not signature_matches(SECRET, 1_700_000_000, BODY, ())


def test_a_notice_gives_its_distinct_numbers_in_order():
    one, two = numbers(2)
    assert parse_notice(notice([one])) == (one,)
    assert parse_notice(notice([two, one, two])) == (two, one)
    assert parse_notice(notice(numbers(MAX_NHS_NUMBERS))) == tuple(numbers(MAX_NHS_NUMBERS))


def test_whitespace_padding_up_to_the_body_limit_is_still_a_notice():
    body = notice(numbers(1))
    padded = body + b" " * (MAX_BODY_BYTES - len(body))
    assert len(padded) == MAX_BODY_BYTES
    assert parse_notice(padded) == tuple(numbers(1))


# 9990000017: a wrong check digit; 9990000140: nine digits whose remainder is 10 (no valid number).
@pytest.mark.parametrize(("body", "says"), [
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b"\xff\xfe\xfa", "not JSON"),
    (b"[" * MAX_BODY_BYTES, "not JSON"),
    (b"[]", "exactly the keys"),
    (b'"changed"', "exactly the keys"),
    (b'{"type": "changed"}', "exactly the keys"),
    (b'{"nhsNumbers": ["9434765919"]}', "exactly the keys"),
    (notice(["9434765919"], reason="moved"), "exactly the keys"),
    (b'{"type": "shielded", "nhsNumbers": ["9434765919"]}', '"type" must be "changed"'),
    (b'{"type": ["changed"], "nhsNumbers": ["9434765919"]}', '"type" must be "changed"'),
    (notice([]), "1 to 100"),
    (notice(numbers(MAX_NHS_NUMBERS + 1)), "1 to 100"),
    (notice("9434765919"), "1 to 100"),
    (notice({"0": "9434765919"}), "1 to 100"),
    (notice(["9434765919", "9990000017"]), '"nhsNumbers"[1] is not an NHS number'),
    (notice(["9990000140"]), '"nhsNumbers"[0]'),
    (notice(["943 476 5919"]), '"nhsNumbers"[0]'),
    (notice(["943476591"]), '"nhsNumbers"[0]'),
    (notice([9434765919]), '"nhsNumbers"[0]'),
    (notice([None]), '"nhsNumbers"[0]'),
])
def test_anything_else_is_bad_user_input_saying_why(body, says):
    with pytest.raises(BadUserInputError) as caught:
        parse_notice(body)
    assert says in caught.value.message
    assert caught.value.code == "BAD_USER_INPUT"


def test_a_bad_number_is_not_quoted_back():
    with pytest.raises(BadUserInputError) as caught:
        parse_notice(notice(["9990000017"]))
    assert "9990000017" not in caught.value.message
