"""Purpose limitation, case references, expiring ids and search that confirms nothing hidden."""

import time

import pytest

from gateway.crypto.ids import ChildIdCodec
from tests.integration.harness import ALL_SCOPES, CHILD_QUERY, FIND_QUERY, errors_by_path
from tests.integration.support import post, record, unknown_nhs

LOCATION = ("child.address", "child.carers", "child.education", "child.primaryCare")


@pytest.mark.parametrize(("purpose", "forbidden"), [
    ("SAFEGUARDING", set()),
    ("HEALTH_CARE", set()),
    ("EARLY_HELP", set()),
    ("SOCIAL_CARE", set()),
    ("EDUCATION", {"child.primaryCare"}),
    ("YOUTH_JUSTICE", {"child.primaryCare"}),
])
async def test_purpose_table_is_enforced(gateway, purpose, forbidden):
    body = await gateway.child("ordinary", purpose=purpose)
    assert {p for p, code in errors_by_path(body).items() if code == "FORBIDDEN"} == forbidden
    for error in body.get("errors", []):
        assert f"{purpose} does not permit" in error["message"]
        assert error["extensions"]["scope"] == "child.health.read"


@pytest.mark.parametrize(("purpose", "shows_sensitive"), [
    ("SAFEGUARDING", True), ("HEALTH_CARE", True), ("EARLY_HELP", False),
    ("SOCIAL_CARE", False), ("EDUCATION", False), ("YOUTH_JUSTICE", False),
])
async def test_sensitive_services_only_for_permitting_purposes(gateway, purpose, shows_sensitive):
    body = await gateway.child("sensitive_consented", purpose=purpose,
                               fields="services { name sensitive }")
    services = body["data"]["child"]["services"]
    assert any(s["sensitive"] for s in services) is shows_sensitive
    assert "errors" not in body


async def test_purpose_table_is_configurable(sims, jwks, signing_key):
    from tests.integration.harness import running_gateway

    purposes = {"EDUCATION": ["child.identity.read", "child.education.read"]}
    async with running_gateway(sims, jwks, signing_key, purposes=purposes) as gateway:
        body = await gateway.child("ordinary", purpose="EDUCATION",
                                   fields="name { family } address { postcode }")
        assert errors_by_path(body) == {"child.address": "FORBIDDEN"}
        body = await gateway.child("ordinary", purpose="SAFEGUARDING", fields="name { family }")
        assert body["data"] == {"child": None}
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("case", [None, "", "   "])
async def test_shielded_location_needs_a_case_reference(gateway, case):
    body = await gateway.child("shielded", case=case)
    codes = errors_by_path(body)
    assert all(codes.get(path) == "SHIELDED" for path in LOCATION), codes
    revealed = await gateway.child("shielded", case="CASE-7")
    assert "errors" not in revealed


async def test_council_down_withholds_location_of_an_unshielded_child(gateway):
    gateway.sims.council.knobs.down = True
    body = await gateway.child("ordinary", scopes=ALL_SCOPES.replace("child.shielded.read", ""))
    codes = errors_by_path(body)
    assert all(codes.get(path) == "SHIELDED" for path in LOCATION), codes
    assert body["data"]["child"]["shielded"] is True


async def test_council_down_withholds_an_unshielded_childs_carers(gateway):
    child = record(gateway, "ordinary")
    assert child.carers
    assert child.council is not None
    assert not child.council.shielded
    gateway.sims.council.knobs.down = True
    response = await post(gateway, CHILD_QUERY, {
        "id": gateway.id_for(child.nhs_number), "purpose": "SAFEGUARDING", "case": "C-1"},
        scopes=ALL_SCOPES.replace("child.shielded.read", ""))
    body = response.json()
    assert body["data"]["child"]["shielded"] is True
    assert body["data"]["child"]["carers"] is None
    assert errors_by_path(body)["child.carers"] == "SHIELDED"
    for carer in child.carers:
        for value in (carer.given, carer.relationship, carer.phone):
            assert value not in response.text


async def test_an_expired_id_reads_exactly_as_an_unknown_child(gateway):
    settings = gateway.settings.ids
    lifetime = settings.lifetime_seconds
    old = ChildIdCodec(settings.secret.get_secret_value(), lifetime,
                       clock=lambda: time.time() - 2 * lifetime)
    nhs = gateway.fixtures["ordinary"]
    variables = {"purpose": "SAFEGUARDING", "case": "CASE-1"}
    expired = await post(gateway, CHILD_QUERY, {"id": old.encode(nhs, gateway.client_id),
                                                **variables}, scopes=ALL_SCOPES)
    unknown = await post(gateway, CHILD_QUERY, {
        "id": gateway.id_for(unknown_nhs(gateway.sims.population)), **variables},
        scopes=ALL_SCOPES)
    assert expired.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert expired.content == unknown.content
    previous = ChildIdCodec(settings.secret.get_secret_value(), lifetime,
                            clock=lambda: time.time() - lifetime)
    body = await gateway.gql(CHILD_QUERY, {"id": previous.encode(nhs, gateway.client_id),
                                           **variables})
    assert body["data"]["child"]["nhsNumber"] == nhs  # one epoch of overlap


def _search(child, **extra):
    return {"familyName": child.family, "dateOfBirth": child.date_of_birth.isoformat(), **extra}


async def test_a_hidden_postcode_is_never_confirmed(gateway):
    child = record(gateway, "shielded")
    postcode = child.home.postcode
    no_shield = ALL_SCOPES.replace("child.shielded.read", "")
    by_postcode = await gateway.gql(FIND_QUERY, {"s": _search(child, postcode=postcode)},
                                    scopes=no_shield)
    assert by_postcode == {"data": {"findChildren": []}}
    by_name = await gateway.gql(FIND_QUERY, {"s": _search(child, givenName=child.given[0])},
                                scopes=no_shield)
    assert len(by_name["data"]["findChildren"]) == 1
    # NHS number + a wrong postcode: the hidden postcode is not compared either way
    wrong = await gateway.gql(FIND_QUERY, {"s": {"nhsNumber": child.nhs_number,
                                                 "postcode": "ZZ1 1ZZ"}}, scopes=no_shield)
    right = await gateway.gql(FIND_QUERY, {"s": {"nhsNumber": child.nhs_number,
                                                 "postcode": postcode}}, scopes=no_shield)
    assert wrong == right
    assert len(right["data"]["findChildren"]) == 1


async def test_a_postcode_search_needs_the_contact_scope(gateway):
    child = record(gateway, "ordinary")
    search = {"s": _search(child, postcode=child.home.postcode)}
    assert await gateway.gql(FIND_QUERY, search, scopes="child.identity.read") == {
        "data": {"findChildren": []}}
    found = await gateway.gql(FIND_QUERY, search, scopes="child.identity.read child.contact.read")
    assert len(found["data"]["findChildren"]) == 1


async def test_a_visible_postcode_still_finds_a_shielded_child_with_the_shielded_scope(gateway):
    child = record(gateway, "shielded")
    found = await gateway.gql(
        "query($s: ChildSearch!) { findChildren(search: $s, purpose: SAFEGUARDING,"
        ' caseReference: "CASE-9") { id } }',
        {"s": _search(child, postcode=child.home.postcode)})
    assert len(found["data"]["findChildren"]) == 1
