"""A case reference that is not one (a name, an NHS number, a postcode) is refused before
anything is looked up or written to the append-only log."""

from __future__ import annotations

import pytest

from tests.integration.harness import FIND_QUERY, errors_by_path, running_gateway
from tests.integration.test_accountability import events_for


def personal(gateway):
    child = gateway.sims.population.child(gateway.fixtures["ordinary"])
    return {"name": f"{child.given[0]} {child.family}", "nhs": child.nhs_number,
            "postcode": child.home.postcode, "compact postcode": child.home.postcode.replace(
                " ", ""), "birth date": child.date_of_birth.isoformat()}


@pytest.mark.parametrize("kind", ["name", "nhs", "postcode", "compact postcode", "birth date"])
async def test_personal_data_as_a_case_reference_is_refused_and_not_recorded(
        sims, jwks, signing_key, tmp_path, kind):
    audit = tmp_path / "audit.db"
    async with running_gateway(sims, jwks, signing_key,
                               audit={"sqlite_path": str(audit)}) as gateway:
        value = personal(gateway)[kind]
        body = await gateway.child("ordinary", case=value)
        assert errors_by_path(body) == {"child": "BAD_USER_INPUT"}
        assert body["data"] == {"child": None}
        assert value not in str(body)
        nhs = gateway.fixtures["ordinary"]
        found = await gateway.gql(FIND_QUERY.replace("purpose: SAFEGUARDING",
                                                     f'purpose: SAFEGUARDING, caseReference: '
                                                     f'"{value}"'),
                                  {"s": {"nhsNumber": nhs}})
        assert errors_by_path(found) == {"findChildren": "BAD_USER_INPUT"}
        assert await events_for(gateway, "ordinary") == []
        hits = sum(sum(getattr(gateway.sims, n).hits.values()) for n in gateway.sims.urls())
        assert hits == 0, "nothing is looked up"
    assert value.encode() not in audit.read_bytes()


async def test_a_real_reference_is_recorded_as_given(gateway):
    await gateway.child("ordinary", case="CS/2026/00123")
    [event] = await events_for(gateway, "ordinary")
    assert event.case_reference == "CS/2026/00123"


async def test_a_configured_format(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key, case_references={
            "pattern": "MOS-[0-9]{6}", "description": "MOS- and six digits"}) as gateway:
        assert (await gateway.child("ordinary", case="MOS-123456"))["data"]["child"]
        refused = await gateway.child("ordinary", case="CASE-1")
        assert "MOS- and six digits" in refused["errors"][0]["message"]
