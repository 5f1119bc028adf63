"""`connectors.http.query_string` encodes exactly as `urlencode(params, quote_via=quote)`."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from hypothesis import given
from hypothesis import strategies as st

from connectors.http import query_string


@given(st.dictionaries(st.text(), st.text()))
def test_any_names_and_values_encode_as_urlencode_does(params: dict[str, str]):
    assert query_string(params) == urlencode(params, quote_via=quote)


def test_what_needs_no_escaping_is_kept_and_the_rest_escaped():
    assert query_string({"nhs_number": "9990001234", "dob": "2015-03-01"}) == \
        "nhs_number=9990001234&dob=2015-03-01"
    assert query_string({"identifier": "https://fhir.nhs.uk/Id/nhs-number|9990001234",
                         "q": "a&b=c d", "é": "\n"}) == (
        "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9990001234"
        "&q=a%26b%3Dc%20d&%C3%A9=%0A")
