"""Cache keys name no child; values are ciphertext bound to their key."""

from gateway.cache import CacheSealer

SEALER = CacheSealer("k" * 32, "cpg:")


def test_key_hides_the_nhs_number_and_is_stable():
    key = SEALER.key("gp", "9990000018")
    assert key.startswith("cpg:s:")
    assert "9990000018" not in key
    assert key == SEALER.key("gp", "9990000018")
    assert key != SEALER.key("school", "9990000018")
    assert key != CacheSealer("j" * 32, "cpg:").key("gp", "9990000018")


def test_value_round_trips_and_hides_its_payload():
    key = SEALER.key("gp", "9990000018")
    sealed = SEALER.seal(key, b'{"family":"Smith"}')
    assert b"Smith" not in sealed
    assert SEALER.open(key, sealed) == b'{"family":"Smith"}'


def test_value_moved_to_another_key_or_tampered_does_not_open():
    key = SEALER.key("gp", "9990000018")
    other = SEALER.key("gp", "9990000026")
    sealed = SEALER.seal(key, b"payload")
    assert SEALER.open(other, sealed) is None
    assert SEALER.open(key, sealed[:-1] + bytes([sealed[-1] ^ 1])) is None
    assert SEALER.open(key, b"short") is None
