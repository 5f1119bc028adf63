"""Garbage from a source system becomes `ConnectorProtocolError`, never a stray exception.

A canned server on loopback answers exactly the bytes each case gives it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from aiohttp import test_utils, web

from connectors.errors import ConnectorProtocolError, ConnectorResponseError
from connectors.http import HttpClient
from tests.connectors.helpers import make_connector

NHS = "9990000018"
OTHER_NHS = "9990000026"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


class Canned:
    """Answers each path with the (status, content type, body) set for it."""

    def __init__(self):
        self.answers = {}
        self.chunked = set()
        self.url = ""

    def set(self, path, payload, status=200, content_type="application/json"):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.answers[path] = (status, content_type, body)

    async def handle(self, request):
        status, content_type, body = self.answers.get(request.path, (404, "text/plain", b""))
        if request.path in self.chunked:
            return await self.stream(request, body)
        headers = {"Location": "/elsewhere"} if 300 <= status < 400 else None
        return web.Response(status=status, body=body, content_type=content_type,
                            headers=headers)


    @staticmethod
    async def stream(request, body):
        # Sent in pieces without Content-Length, so only reading reveals the size.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 500):
            await response.write(body[start:start + 500])
        await response.write_eof()
        return response


@pytest.fixture
async def canned():
    server_state = Canned()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server_state.handle)
    async with test_utils.TestServer(app, host="127.0.0.1") as server:
        server_state.url = str(server.make_url("")).rstrip("/")
        yield server_state


@pytest.fixture
async def connect(canned):
    made = []

    def connector(kind):
        made.append(make_connector(kind, canned.url))
        return made[-1]

    yield connector
    for connector_made in made:
        await connector_made.close()


def patient(nhs=NHS, **changes):
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS_SYSTEM, "value": nhs}],
        "name": [{"use": "official", "family": "Ashdown", "given": ["Ava"]}],
        "gender": "female", "birthDate": "2016-08-08",
        "address": [{"use": "home", "line": ["1 Elm Road"], "city": "Leeds",
                     "postalCode": "LS6 1AB"}],
    }
    resource.update(changes)
    return resource


def bundle(*resources):
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}


PUPIL = {"nhs_number": NHS, "legal_forename": "Ava", "middle_names": "", "legal_surname": "Ash",
         "date_of_birth": "2016-08-08", "gender": "F", "home_postcode": "LS6 1AB",
         "school": None, "contacts": []}
PERSON = {"nhsNumber": NHS, "forenames": ["Ava"], "surname": "Ash", "dateOfBirth": "2016-08-08",
          "address": None, "shielded": False, "retentionConsent": False, "involvements": [
              {"service": "Team", "type": "Early help", "sensitive": False,
               "consentRecorded": True, "contact": None}]}


def changed(record, **changes):
    result = copy.deepcopy(record)
    for key, value in changes.items():
        if value is ...:
            del result[key]
        else:
            result[key] = value
    return result


GP_GARBAGE = {
    "two records": bundle(patient(), patient()),
    "another child": bundle(patient(OTHER_NHS)),
    "invalid nhs number": bundle(patient("9990000019")),
    "no nhs number": bundle(patient(identifier=[])),
    "not a bundle": {"resourceType": "OperationOutcome", "issue": []},
    "entry not a list": {"resourceType": "Bundle", "type": "searchset", "entry": {}},
    "resource not an object": {"resourceType": "Bundle", "entry": [{"resource": "Patient"}]},
    "bad gender": bundle(patient(gender="boy")),
    "bad birth date": bundle(patient(birthDate="2016-13-01")),
    "birth date a number": bundle(patient(birthDate=20160808)),
    "name not a list": bundle(patient(name={"family": "Ashdown"})),
    "given not strings": bundle(patient(name=[{"family": "Ashdown", "given": [1]}])),
    "address line not a list": bundle(patient(address=[{"line": "1 Elm Road"}])),
    "practice id unsafe": bundle(patient(
        generalPractitioner=[{"reference": "Organization/x?y=1"}])),
    "top level list": [bundle(patient())],
}
SCHOOL_GARBAGE = {
    "two records": {"pupils": [PUPIL, PUPIL]},
    "another child": {"pupils": [changed(PUPIL, nhs_number=OTHER_NHS)]},
    "no pupils key": {"students": [PUPIL]},
    "bad gender": {"pupils": [changed(PUPIL, gender="Girl")]},
    "no surname": {"pupils": [changed(PUPIL, legal_surname=...)]},
    "blank surname": {"pupils": [changed(PUPIL, legal_surname="  ")]},
    "bad date": {"pupils": [changed(PUPIL, date_of_birth="08/08/2016")]},
    "contacts not a list": {"pupils": [changed(PUPIL, contacts={"forename": "Mia"})]},
    "contact without surname": {"pupils": [changed(PUPIL, contacts=[{"forename": "Mia"}])]},
    "school without name": {"pupils": [changed(PUPIL, school={"urn": "100000"})]},
}
COUNCIL_GARBAGE = {
    "two records": {"results": [PERSON, PERSON]},
    "another child": {"results": [changed(PERSON, nhsNumber=OTHER_NHS)]},
    "shielded missing": {"results": [changed(PERSON, shielded=...)]},
    "shielded a string": {"results": [changed(PERSON, shielded="false")]},
    "shielded null": {"results": [changed(PERSON, shielded=None)]},
    "retention missing": {"results": [changed(PERSON, retentionConsent=...)]},
    "involvement sensitive missing": {"results": [changed(PERSON, involvements=[
        {"service": "Clinic", "type": "Sexual health", "consentRecorded": True}])]},
    "involvements not a list": {"results": [changed(PERSON, involvements="none")]},
    "results null": {"results": None},
}
PATHS = {"gp": "/Patient", "school": "/api/v1/pupils", "council": "/api/children"}
CASES = [(kind, name, payload) for kind, cases in
         (("gp", GP_GARBAGE), ("school", SCHOOL_GARBAGE), ("council", COUNCIL_GARBAGE))
         for name, payload in cases.items()]


@pytest.mark.parametrize(("kind", "case", "payload"), CASES,
                         ids=[f"{kind}-{case}" for kind, case, _ in CASES])
async def test_garbage_is_a_protocol_error(canned, connect, kind, case, payload):
    content_type = "application/fhir+json" if kind == "gp" else "application/json"
    canned.set(PATHS[kind], payload, content_type=content_type)
    with pytest.raises(ConnectorProtocolError) as caught:
        await connect(kind).fetch(NHS)
    assert NHS not in str(caught.value)
    assert "Ash" not in str(caught.value)


@pytest.mark.parametrize(("body", "content_type"), [
    (b"", "application/json"),
    (b"[" * 100_000, "application/json"),
    (b"\xff\xfe{", "application/json"),
    (b'{"pupils": []}', "text/plain"),
    (b"<html></html>", "text/html"),
])
async def test_undecodable_answers_are_protocol_errors(canned, connect, body, content_type):
    canned.set("/api/v1/pupils", body, content_type=content_type)
    with pytest.raises(ConnectorProtocolError):
        await connect("school").fetch(NHS)


async def test_redirects_are_not_followed(canned, connect):
    canned.set("/api/children", {"results": []}, status=302)
    with pytest.raises(ConnectorResponseError) as caught:
        await connect("council").fetch(NHS)
    assert caught.value.status == 302


async def test_a_missing_practice_is_a_response_error(canned, connect):
    canned.set("/Patient", bundle(patient(generalPractitioner=[{"reference": "Organization/X1"}])),
               content_type="application/fhir+json")
    with pytest.raises(ConnectorResponseError) as caught:
        await connect("gp").fetch(NHS)
    assert caught.value.status == 404


async def test_lenient_where_fhir_allows(canned, connect):
    outcome = {"resource": {"resourceType": "OperationOutcome", "issue": []},
               "search": {"mode": "outcome"}}
    answer = bundle(patient(birthDate="2016", name=[
        {"use": "old", "family": "Former"}, {"use": "usual", "family": "Ashdown"}],
        address=[{"use": "old", "line": ["Gone"]}]))
    answer["entry"].append(outcome)
    canned.set("/Patient", answer, content_type="application/fhir+json")
    facts = await connect("gp").fetch(NHS)
    assert facts.date_of_birth is None
    assert facts.name.family == "Ashdown"
    assert facts.name.given == ()
    assert (facts.address, facts.practice) == (None, None)


async def test_absent_lists_are_not_stated(canned, connect):
    canned.set("/api/v1/pupils", {"pupils": [changed(PUPIL, contacts=..., middle_names=None)]})
    facts = await connect("school").fetch(NHS)
    assert facts.carers is None
    assert facts.name.given == ("Ava",)
    canned.set("/api/children", {"results": [changed(PERSON, involvements=...)]})
    facts = await connect("council").fetch(NHS)
    assert (facts.services, facts.date_of_birth) == (None, dt.date(2016, 8, 8))


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_answers_are_refused(canned, chunked):
    canned.set("/big", {"pupils": [], "padding": "x" * 5_000})
    if chunked:
        canned.chunked.add("/big")
    client = HttpClient("school", canned.url, timeout_seconds=1.0, max_connections=2,
                        max_body_bytes=1_000)
    try:
        with pytest.raises(ConnectorProtocolError, match="too large"):
            await client.get_json("/big")
    finally:
        await client.close()
