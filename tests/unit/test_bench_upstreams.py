"""What the bench and its peer run against: the JWKS they serve and the children they ask."""

import aiohttp
import pytest
from joserfc.jwk import ECKey

from bench.upstreams import JWKS_PATH, jwks_server


async def test_the_jwks_serves_the_public_half_and_stops():
    key = ECKey.generate_key("P-256", {"kid": "bench-1", "use": "sig", "alg": "ES256"})

    async with jwks_server(key) as url, aiohttp.ClientSession() as session:
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith(JWKS_PATH)
        async with session.get(url) as response:
            served = await response.json()
    assert served == {"keys": [key.as_dict(private=False)]}
    assert "d" not in served["keys"][0]  # no private part

    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):  # closed with its block
            await session.get(url)
