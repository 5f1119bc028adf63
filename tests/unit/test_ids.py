"""Client-bound, expiring child ids (AES-SIV)."""

import pytest

from gateway.crypto.ids import ChildIdCodec

SECRET = "s" * 32
DAY = 86_400


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_round_trip_and_determinism():
    codec = ChildIdCodec(SECRET, DAY, Clock())
    child_id = codec.encode("9990000018", "client-a")
    assert codec.encode("9990000018", "client-a") == child_id
    assert codec.decode(child_id, "client-a") == "9990000018"
    assert "9990000018" not in child_id


def test_ids_differ_between_clients_and_do_not_cross():
    codec = ChildIdCodec(SECRET, DAY, Clock())
    a = codec.encode("9990000018", "client-a")
    assert a != codec.encode("9990000018", "client-b")
    assert codec.decode(a, "client-b") is None


def test_expiry_with_one_epoch_of_overlap():
    clock = Clock()
    codec = ChildIdCodec(SECRET, DAY, clock)
    child_id = codec.encode("9990000018", "c")
    clock.now += DAY
    assert codec.decode(child_id, "c") == "9990000018"
    clock.now += DAY
    assert codec.decode(child_id, "c") is None


def test_other_secret_cannot_open():
    child_id = ChildIdCodec(SECRET, DAY, Clock()).encode("9990000018", "c")
    assert ChildIdCodec("t" * 32, DAY, Clock()).decode(child_id, "c") is None


@pytest.mark.parametrize("bad", ["", "c1.", "c1.@@@@", "x1.AAAA", "c1." + "A" * 35,
                                 "c1." + "A" * 200, "9990000018"])
def test_malformed_or_forged_ids(bad):
    assert ChildIdCodec(SECRET, DAY, Clock()).decode(bad, "c") is None


def test_tampered_id_is_rejected():
    codec = ChildIdCodec(SECRET, DAY, Clock())
    child_id = codec.encode("9990000018", "c")
    flipped = child_id[:-2] + ("A" if child_id[-2] != "A" else "B") + child_id[-1]
    assert codec.decode(flipped, "c") is None
