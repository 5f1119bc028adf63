"""TokenCache: bounded, keyed by digest, never past exp."""

from __future__ import annotations

import pytest

from gateway.auth import Caller
from gateway.auth.tokencache import TokenCache


def caller(expires_at: int = 1_000) -> Caller:
    return Caller(
        subject="s",
        client_id="c",
        organisation=None,
        scopes=frozenset(),
        amr=frozenset({"mfa"}),
        expires_at=expires_at,
    )


def test_a_cached_caller_is_returned_until_exp_and_never_at_it():
    cache = TokenCache(10)
    cache.put("token", caller(1_000), now=900)
    assert cache.get("token", now=999.9) == caller(1_000)
    assert cache.get("token", now=1_000) is None
    assert len(cache) == 0


def test_an_expired_caller_is_not_stored():
    cache = TokenCache(10)
    cache.put("token", caller(1_000), now=1_000)
    assert len(cache) == 0


def test_the_cache_is_bounded_and_evicts_the_least_recently_used():
    cache = TokenCache(2)
    cache.put("a", caller(), now=0)
    cache.put("b", caller(), now=0)
    assert cache.get("a", now=0) is not None
    cache.put("c", caller(), now=0)
    assert len(cache) == 2
    assert cache.get("b", now=0) is None
    assert cache.get("a", now=0) is not None
    assert cache.get("c", now=0) is not None


def test_zero_disables_caching_and_negative_is_refused():
    cache = TokenCache(0)
    cache.put("a", caller(), now=0)
    assert cache.get("a", now=0) is None
    with pytest.raises(ValueError, match="negative"):
        TokenCache(-1)


def test_only_digests_are_kept():
    cache = TokenCache(1)
    cache.put("secret.token.value", caller(), now=0)
    assert "secret" not in repr(vars(cache))
