"""Audit events: canonical round trip, pseudonyms only, checkpoints signed and checked."""

import datetime
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from gateway.accountability.audit import AuditEvent, child_pseudonym
from gateway.accountability.audit.chain import GENESIS, Head, Sealer, chain_hash, encoded, leaf_hash
from gateway.accountability.audit.checkpoints import CheckpointKey
from gateway.accountability.audit.events import decode, encode, format_at
from gateway.crypto.keys import derive_key
from gateway.settings import ConfigError
from tests.audit.helpers import SECRET, event, settings


def test_round_trip_and_canonical_bytes():
    original = event(7, outcome="refused")
    body = encode(original)
    assert decode(body) == original
    assert AuditEvent.from_json(original.to_json()) == original
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    assert b" " not in body
    assert json.loads(body)["withheld"] == [["Child.address", "SHIELDED"]]


def test_times_are_normalised_to_utc():
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    local = event(1)
    shifted = AuditEvent(**{**{f: getattr(local, f) for f in local.__slots__},
                            "at": local.at.astimezone(plus_two)})
    assert shifted.at.tzinfo == datetime.UTC
    assert encode(shifted) == encode(local)


@pytest.mark.parametrize(("change", "fragment"), [
    ({"at": datetime.datetime(2026, 1, 1)}, "timezone-aware"),  # noqa: DTZ001 - the point
    ({"action": "child.write"}, "action"),
    ({"outcome": "maybe"}, "outcome"),
    ({"child": "9990000018"}, "never an NHS number"),
    ({"child": "A" * 64}, "never an NHS number"),
])
def test_construction_refuses(change, fragment):
    base = {f: getattr(event(1), f) for f in AuditEvent.__slots__}
    with pytest.raises(ValueError, match=fragment):
        AuditEvent(**{**base, **change})


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"at": "x"}',
    json.dumps({**event(1).to_json(), "subject": 5}).encode(),
    json.dumps({**event(1).to_json(), "released": "Child.name"}).encode(),
    json.dumps({**event(1).to_json(), "at": "yesterday"}).encode(),
])
def test_decode_refuses_what_is_not_an_event(body):
    with pytest.raises(ValueError, match="not an audit event"):
        decode(body)


def test_pseudonym_is_keyed_and_stable():
    one = child_pseudonym(SECRET, "9990000018")
    assert one == child_pseudonym(SECRET, "9990000018")
    assert one != child_pseudonym(SECRET, "9990000026")
    assert one != child_pseudonym("another-secret-" + "o" * 20, "9990000018")
    assert len(one) == 64
    assert "9990000018" not in one


def test_fhir_shape():
    resource = event(3).to_fhir()
    assert resource["resourceType"] == "AuditEvent"
    assert resource["agent"][0]["who"]["identifier"]["value"] == "user-0"
    assert resource["entity"][0]["what"]["identifier"]["value"] == event(3).child
    assert {"type": "withheld:SHIELDED", "valueString": "Child.address"} in \
        resource["entity"][0]["detail"]
    assert resource["outcome"] == "0"


def test_sealing_chains_and_checkpoints():
    key = CheckpointKey.from_settings(settings())
    sealed = Sealer(key, every=3).seal(Head(), encoded([event(i) for i in range(7)]))
    previous = GENESIS
    for row in sealed.events:
        assert row.prev_hash == previous
        assert row.leaf_hash == leaf_hash(row.body)
        assert row.chain_hash == chain_hash(previous, row.leaf_hash)
        previous = row.chain_hash
    assert [e.seq for e in sealed.events] == list(range(1, 8))
    assert [(c.seq, c.prev_seq) for c in sealed.checkpoints] == [(3, 0), (6, 3)]
    assert all(key.verify(c) for c in sealed.checkpoints)
    later = Sealer(key, every=3).seal(Head(7, previous, 6), encoded([event(8), event(9)]))
    assert [(c.seq, c.prev_seq) for c in later.checkpoints] == [(9, 6)]


def test_domain_separation():
    # A leaf can never pass for a chain node: the prefixes differ.
    assert leaf_hash(b"x") != chain_hash(b"", b"x")


def _pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.mark.parametrize(("make", "algorithm"), [
    (ed25519.Ed25519PrivateKey.generate, "Ed25519"),
    (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
])
def test_key_files(tmp_path, make, algorithm):
    path = tmp_path / "checkpoint.pem"
    path.write_bytes(_pem(make()))
    key = CheckpointKey.from_settings(settings(checkpoint_key_file=str(path)))
    checkpoint = key.sign(5, 0, 5, bytes(32))
    assert key.algorithm == algorithm
    assert key.verify(checkpoint)
    other = CheckpointKey.from_settings(settings())
    assert not other.verify(checkpoint)
    assert not key.verify(key.sign(5, 0, 5, bytes(32)).__class__(
        5, 0, 5, b"\x01" * 32, key.key_id, algorithm, checkpoint.signature))


def test_derived_key_is_deterministic():
    assert CheckpointKey.from_settings(settings()).key_id == \
        CheckpointKey.from_settings(settings()).key_id


@pytest.mark.parametrize(("content", "fragment"), [
    (None, "cannot read"),
    (b"not a key", "not an unencrypted PEM"),
    ("p384", "must be Ed25519 or P-256"),
    ("rsa", "must be Ed25519 or P-256"),
])
def test_bad_key_files(tmp_path, content, fragment):
    path = tmp_path / "checkpoint.pem"
    if content == "p384":
        path.write_bytes(_pem(ec.generate_private_key(ec.SECP384R1())))
    elif content == "rsa":
        path.write_bytes(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=fragment):
        CheckpointKey.from_settings(settings(checkpoint_key_file=str(path)))


# --- encode: orjson's bytes are json's bytes --------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
"""Any text JSON can hold in UTF-8 (no lone surrogates): control characters, quotes, emoji."""


def _reference(ev: AuditEvent) -> bytes:
    """The canonical bytes as defined: `json.dumps` with sorted keys, compact, UTF-8."""
    return json.dumps(ev.to_json(), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


@hypothesis_settings(max_examples=300, deadline=None)
@given(subject=_TEXT, organisation=st.none() | _TEXT, case=st.none() | _TEXT,
       released=st.lists(_TEXT, max_size=4), withheld=st.lists(st.tuples(_TEXT, _TEXT),
                                                                max_size=3),
       reason=st.none() | _TEXT, count=st.none() | st.integers(1, 2**64 + 5))
def test_encode_writes_the_bytes_json_defines(subject, organisation, case, released, withheld,
                                              reason, count):
    ev = AuditEvent(at=datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC),
                    request_id="req-1", action="request", outcome="refused", subject=subject,
                    organisation=organisation, client_id="client-a", purpose=None,
                    case_reference=case, child=None, released=tuple(released),
                    withheld=tuple(withheld), reason=reason, count=count)
    assert encode(ev) == _reference(ev)


def test_a_child_pseudonym_is_the_keyed_hmac_of_the_nhs_number():
    for nhs in ("9990000018", "9990000026", "9990000018"):
        expected = hmac.new(derive_key(SECRET, "audit-child"), nhs.encode(),
                            hashlib.sha256).hexdigest()
        assert child_pseudonym(SECRET, nhs) == expected


@pytest.mark.parametrize("at", [
    datetime.datetime(2026, 12, 4, 12, 31, 0, tzinfo=datetime.UTC),
    datetime.datetime(2026, 3, 29, 1, 0, 0, 1, tzinfo=datetime.UTC),
    datetime.datetime(2026, 7, 1, 9, 5, 7, 999999,
                      tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
    datetime.datetime(1999, 12, 31, 23, 59, 59, 500000,
                      tzinfo=datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))),
    datetime.datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC),
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC),
])
def test_format_at_is_the_strftime_definition(at):
    assert format_at(at) == at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(st.datetimes(timezones=st.just(datetime.UTC)))
def test_format_at_is_the_strftime_definition_for_any_utc_time(at):
    assert format_at(at) == at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
