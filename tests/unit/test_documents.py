"""Trusted documents and persisted queries: manifests checked at load, requests by table."""

import json

import pytest

from gateway.core.errors import BadUserInputError
from gateway.settings import ConfigError, LimitSettings
from gateway.web.documents import (
    DocumentNotTrustedError,
    DocumentRequest,
    Documents,
    PersistedQueries,
    PersistedQueryNotFoundError,
    PersistedQueryNotSupportedError,
    TrustedDocument,
    TrustedDocuments,
    document_request,
    read_manifest,
    sha256_hex,
    trusted_documents,
)
from resolvers.schema import build_schema

FIND = "query Find($s: ChildSearch!) { findChildren(search: $s, purpose: SAFEGUARDING) { id } }"
NAME = "query Name($id: ID!) { child(id: $id, purpose: SAFEGUARDING) { name { family } } }"
OTHER = "{ __typename }"


@pytest.fixture(scope="module")
def schema():
    return build_schema(LimitSettings(), development=False)


def write(tmp_path, data, name="manifest.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def apollo(*bodies):
    return {"format": "apollo-persisted-query-manifest", "version": 1,
            "operations": [{"id": sha256_hex(b), "name": "Op", "type": "query", "body": b}
                           for b in bodies]}


def test_codegen_client_preset_manifest(tmp_path, schema):
    path = write(tmp_path, {sha256_hex(FIND): FIND, f"sha256:{sha256_hex(NAME)}": NAME})
    trusted = trusted_documents(path, schema, max_tokens=2000)
    assert set(trusted.by_id) == {sha256_hex(FIND), sha256_hex(NAME)}
    assert trusted.by_id[sha256_hex(FIND)].text == FIND
    assert trusted.by_text[NAME].id == sha256_hex(NAME)


def test_apollo_persisted_query_manifest(tmp_path, schema):
    trusted = trusted_documents(write(tmp_path, apollo(FIND, NAME)), schema, max_tokens=2000)
    assert set(trusted.by_text) == {FIND, NAME}


def test_an_upper_case_hash_is_the_same_document(tmp_path):
    assert read_manifest(write(tmp_path, {sha256_hex(FIND).upper(): FIND})) == {
        sha256_hex(FIND): FIND}


def one_line_error(call) -> str:
    with pytest.raises(ConfigError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("data", "says"), [
    pytest.param({sha256_hex(FIND): NAME}, "is not the SHA-256 of its document", id="wrong-hash"),
    pytest.param({"abc": FIND}, "'abc' is not a SHA-256 hash", id="not-a-hash"),
    pytest.param({"a" * 40: FIND}, "is a SHA-1 hash; generate SHA-256 ids (GraphQL Code "
                 "Generator: persistedDocuments: {hashAlgorithm: 'sha256'})",
                 id="codegen-default-sha1"),
    pytest.param({sha256_hex(FIND): 7}, "the document is not a string", id="not-text"),
    pytest.param([FIND], "expected a JSON object", id="a-list"),
    pytest.param({**apollo(FIND), "version": 2}, "needs version 1", id="apollo-version"),
    pytest.param({**apollo(FIND), "operations": [{"body": FIND}]}, "operations[0] has no string id",
                 id="apollo-no-id"),
    pytest.param("{not json", "not JSON", id="not-json"),
])
def test_an_unsound_manifest_is_one_line_naming_the_file_and_entry(tmp_path, data, says):
    path = write(tmp_path, data)
    message = one_line_error(lambda: read_manifest(path))
    assert message.startswith(f"[documents] manifest {path}: ")
    assert says in message


def test_an_unreadable_manifest(tmp_path):
    missing = str(tmp_path / "missing.json")
    assert "cannot be read (No such file or directory)" in one_line_error(
        lambda: read_manifest(missing))
    assert "cannot be read" in one_line_error(lambda: read_manifest(str(tmp_path)))


@pytest.mark.parametrize(("document", "says"), [
    pytest.param("query { child(id: 1 { id } }", "Syntax Error", id="syntax"),
    pytest.param("{ child(id: \"x\", purpose: SAFEGUARDING) { shoeSize } }",
                 "Cannot query field 'shoeSize'", id="unknown-field"),
    pytest.param("{ __schema { types { name } } }", "introspection", id="introspection"),
    pytest.param("{ child(id: \"x\", purpose: SAFEGUARDING) { carers { address { lines } "
                 "name { given } } } }", None, id="valid"),
    pytest.param("{ a: __typename b: __typename c: __typename d: __typename e: __typename "
                 "f: __typename g: __typename h: __typename i: __typename j: __typename "
                 "k: __typename l: __typename m: __typename n: __typename o: __typename "
                 "p: __typename }", "aliases", id="the-schemas-own-limits"),
    pytest.param("fragment F on Query { __typename }", "no operation", id="fragments-only"),
])
def test_each_document_is_parsed_and_validated_with_the_schemas_rules(tmp_path, schema,
                                                                      document, says):
    path = write(tmp_path, {sha256_hex(document): document})
    if says is None:
        assert len(trusted_documents(path, schema, max_tokens=2000)) == 1
        return
    message = one_line_error(lambda: trusted_documents(path, schema, max_tokens=2000))
    assert f"document {sha256_hex(document)[:12]}" in message
    assert says.lower() in message.lower()


def test_the_token_limit_applies_at_load(tmp_path, schema):
    path = write(tmp_path, {sha256_hex(FIND): FIND})
    assert "tokens" in one_line_error(lambda: trusted_documents(path, schema, max_tokens=5))


def test_persisted_queries_forget_the_least_recently_used():
    store = PersistedQueries(2)
    store.put("a", "A")
    store.put("b", "B")
    assert store.get("a") == "A"
    store.put("c", "C")
    assert (store.get("a"), store.get("b"), store.get("c")) == ("A", None, "C")


HASH = sha256_hex(FIND)


@pytest.mark.parametrize(("payload", "expected"), [
    ({"query": FIND}, DocumentRequest(FIND)),
    ({"documentId": f"sha256:{HASH}"}, DocumentRequest(document_id=HASH)),
    ({"documentId": HASH.upper()}, DocumentRequest(document_id=HASH)),
    ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": HASH}}},
     DocumentRequest(apq_hash=HASH)),
    ({"query": FIND, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": HASH}}},
     DocumentRequest(FIND, apq_hash=HASH)),
    ({"query": FIND, "extensions": {"other": 1}}, DocumentRequest(FIND)),
])
def test_the_ways_to_name_a_document(payload, expected):
    assert document_request(payload) == expected


@pytest.mark.parametrize(("payload", "says"), [
    ({}, "`query` must be a non-empty string"),
    ({"query": " "}, "`query` must be a non-empty string"),
    ({"query": 3}, "`query` must be a non-empty string"),
    ({"documentId": "md5:abc"}, "`documentId` must be a SHA-256 hash"),
    ({"documentId": 12}, "`documentId` must be a SHA-256 hash"),
    ({"documentId": HASH, "query": FIND}, "Send `documentId` alone"),
    ({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": HASH}}}, "version 1"),
    ({"extensions": {"persistedQuery": "x"}}, "version 1"),
    ({"extensions": {"persistedQuery": {"version": 1}}}, "sha256Hash` must be a SHA-256"),
])
def test_a_misshapen_request_is_bad_user_input(payload, says):
    with pytest.raises(BadUserInputError, match=says):
        document_request(payload)


def trusted(*texts):
    return TrustedDocuments(TrustedDocument(sha256_hex(t), t) for t in texts)


def resolve(documents, **request):
    return documents.resolve(DocumentRequest(**request))


def test_trusted_only_runs_manifest_documents_by_id_or_exact_text():
    documents = Documents(trusted(FIND), None, trusted_only=True)
    assert resolve(documents, document_id=HASH) is documents.trusted.by_id[HASH].text
    assert resolve(documents, query=FIND) == FIND
    assert resolve(documents, apq_hash=HASH) == FIND  # an Apollo client's hash, in the manifest
    with pytest.raises(DocumentNotTrustedError):
        resolve(documents, query=OTHER)
    with pytest.raises(DocumentNotTrustedError):
        resolve(documents, query=FIND + " ")  # exact text only
    with pytest.raises(PersistedQueryNotFoundError):
        resolve(documents, document_id=sha256_hex(OTHER))
    with pytest.raises(PersistedQueryNotSupportedError):  # APQ off: Apollo clients send text
        resolve(documents, apq_hash=sha256_hex(OTHER))
    with pytest.raises(DocumentNotTrustedError):  # ...which is then refused
        resolve(documents, query=OTHER, apq_hash=sha256_hex(OTHER))


def test_automatic_persisted_queries_round_trip():
    documents = Documents(trusted(), PersistedQueries(10), trusted_only=False)
    digest = sha256_hex(OTHER)
    with pytest.raises(PersistedQueryNotFoundError):
        resolve(documents, apq_hash=digest)
    assert resolve(documents, apq_hash=digest, query=OTHER) == OTHER
    assert resolve(documents, apq_hash=digest) == OTHER
    with pytest.raises(BadUserInputError, match="provided sha does not match query"):
        resolve(documents, apq_hash=digest, query=FIND)


def test_apq_off_still_runs_text_with_a_matching_hash_but_keeps_nothing():
    documents = Documents(trusted(), None, trusted_only=False)
    digest = sha256_hex(OTHER)
    assert resolve(documents, apq_hash=digest, query=OTHER) == OTHER
    with pytest.raises(PersistedQueryNotSupportedError):
        resolve(documents, apq_hash=digest)
    with pytest.raises(BadUserInputError, match="provided sha does not match query"):
        resolve(documents, apq_hash=digest, query=FIND)


def test_trusted_only_keeps_untrusted_text_out_of_the_apq_store():
    documents = Documents(trusted(FIND), PersistedQueries(10), trusted_only=True)
    with pytest.raises(DocumentNotTrustedError):
        resolve(documents, apq_hash=sha256_hex(OTHER), query=OTHER)
    with pytest.raises(PersistedQueryNotFoundError):
        resolve(documents, apq_hash=sha256_hex(OTHER))


@pytest.mark.parametrize(("error", "code", "status", "message"), [
    (PersistedQueryNotFoundError(), "PERSISTED_QUERY_NOT_FOUND", 200, "PersistedQueryNotFound"),
    (PersistedQueryNotSupportedError(), "PERSISTED_QUERY_NOT_SUPPORTED", 200,
     "PersistedQueryNotSupported"),
    (DocumentNotTrustedError(), "DOCUMENT_NOT_TRUSTED", 400,
     "Only trusted documents are accepted; send a documentId from the manifest."),
])
def test_codes_and_statuses_apollo_clients_expect(error, code, status, message):
    assert (error.code, error.http_status, error.message) == (code, status, message)
    assert isinstance(error, BadUserInputError)  # noted as a refused request, like bad input


@pytest.mark.parametrize(("command", "name"), [(("config", "check"), "config check"),
                                             (("serve", "--config"), "serve")])
def test_a_bad_manifest_stops_serve_and_config_check_with_one_line(tmp_path, command, name):
    from tests.unit.test_production import SAFE_TOML, run

    bad = write(tmp_path, {sha256_hex(FIND): NAME})
    config = tmp_path / "gw.toml"
    config.write_text(SAFE_TOML.replace("trusted_only = false", f'manifest = "{bad}"'))
    result = run(*command, str(config))
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line] == [
        f"contactpoint {name}: [documents] manifest {bad}: "
        f"'{sha256_hex(FIND)}' is not the SHA-256 of its document"]
