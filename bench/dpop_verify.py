"""Micro-benchmark: the CPU cost of checking one DPoP proof (RFC 9449), with no server.

    .venv/bin/python -m bench.dpop_verify [--proofs 2000] [--repeat 5] [--profile]

CPU time of this process (`time.process_time`), in microseconds per request, on
pre-made proofs (each with its own `jti`):

- `check_proof`: the pure proof check alone, every header checked afresh, and
  with a `ProofKeyCache` (as `TokenValidator` uses it) where that exists;
- `authenticate bearer`: `TokenValidator.authenticate` with a cached Bearer token;
- `authenticate dpop (memory)`: the same token bound to a key, a fresh proof each
  time, the replay check in this process;
- `authenticate dpop (redis)`: the replay check in Redis (`--redis-url`; skipped
  if it does not answer): one `SET NX` round trip; the CPU is this process's
  side of it (Redis's own is not counted, just as the bench counts the gateway's).

The difference between the last two and Bearer is what DPoP adds. Best of
`--repeat` runs is reported, as the minimum is the least disturbed on a shared
machine. `--profile` prints cProfile's top functions for `check_proof` (with
the key cache where there is one).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import time
from typing import TYPE_CHECKING, Any

from joserfc.jwk import ECKey

from gateway.auth import dpop as dpop_module
from gateway.auth.devissuer import mint_dev_token
from gateway.auth.dpop import DpopRequest, ProofReplayCache, check_proof, make_proof
from gateway.auth.tokens import TokenValidator
from gateway.settings import AuthSettings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from joserfc.jwk import Key

ISSUER = "https://bench-issuer.contactpoint.invalid"
AUDIENCE = "contactpoint-bench"
URL = "http://127.0.0.1:8790/graphql"


class _OneKey:
    """Stands in for `JwksCache`: the one signing key, no I/O."""

    def __init__(self, key: ECKey) -> None:
        self._key = key

    async def key_for(self, kid: str) -> Key | None:
        return self._key if kid == self._key.kid else None


def _best_us(run: Callable[[], float], repeat: int, count: int) -> float:
    return min(run() for _ in range(repeat)) / count * 1e6


async def _async_best_us(run: Callable[[], Awaitable[float]], repeat: int, count: int) -> float:
    return min([await run() for _ in range(repeat)]) / count * 1e6


async def main(args: argparse.Namespace) -> None:
    signer = ECKey.generate_key("P-256", {"kid": "bench-1", "use": "sig", "alg": "ES256"})
    client = ECKey.generate_key("P-256", private=True)
    settings = AuthSettings(issuer=ISSUER, audience=AUDIENCE,
                            jwks_url="http://127.0.0.1:1/jwks.json")
    common: dict[str, Any] = {"subject": "bench-user", "scopes": "child.identity.read",
                              "amr": ["mfa"], "roles": ["bench"], "organisation": "bench-org",
                              "client_id": "bench-client", "ttl_seconds": 3600, "key": signer,
                              "issuer": ISSUER, "audience": AUDIENCE}
    bearer = mint_dev_token(**common)
    bound = mint_dev_token(**common, extra_claims={"cnf": {"jkt": client.thumbprint()}})
    jkt = client.thumbprint()
    n, repeat = args.proofs, args.repeat
    rounds = [[make_proof(client, "POST", URL, bound) for _ in range(n)] for _ in range(repeat)]
    now = time.time()

    def pure(**keys: Any) -> float:  # noqa: ANN401 # check_proof's keyword arguments
        proofs = rounds[0]
        started = time.process_time()
        for proof in proofs:
            check_proof(DpopRequest((proof,), "POST", URL), bound, jkt,
                        algorithms=frozenset(settings.algorithms), now=now, window_seconds=60,
                        **keys)
        return time.process_time() - started

    results = {"check_proof_us": round(_best_us(pure, repeat, n), 1)}
    cache = getattr(dpop_module, "ProofKeyCache", None)
    if cache is not None:
        cached = cache()
        results["check_proof_key_cache_us"] = round(
            _best_us(lambda: pure(keys=cached), repeat, n), 1)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(pure if cache is None else lambda: pure(keys=cached))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

    async def authenticate(replay: ProofReplayCache | None) -> dict[str, float]:
        validator = TokenValidator(settings, _OneKey(signer), allow_development_key=True,  # type: ignore[arg-type]
                                   replay=replay)
        await validator.authenticate(f"Bearer {bearer}")
        await validator.authenticate(f"DPoP {bound}",
                                     DpopRequest((make_proof(client, "POST", URL, bound),),
                                                 "POST", URL))
        plain = DpopRequest((), "POST", URL)
        remaining = iter(rounds)

        async def bearer_run() -> float:
            started = time.process_time()
            for _ in range(n):
                await validator.authenticate(f"Bearer {bearer}", plain)
            return time.process_time() - started

        async def dpop_run() -> float:
            proofs = next(remaining)
            started = time.process_time()
            for proof in proofs:
                await validator.authenticate(f"DPoP {bound}", DpopRequest((proof,), "POST", URL))
            return time.process_time() - started

        return {"bearer": await _async_best_us(bearer_run, repeat, n),
                "dpop": await _async_best_us(dpop_run, repeat, n)}

    memory = await authenticate(ProofReplayCache())
    results |= {"authenticate_bearer_us": round(memory["bearer"], 1),
                "authenticate_dpop_memory_us": round(memory["dpop"], 1),
                "dpop_extra_memory_us": round(memory["dpop"] - memory["bearer"], 1)}
    if args.redis_url:
        import redis.asyncio as aioredis

        connection = aioredis.Redis.from_url(args.redis_url)
        try:
            await connection.ping()
        except (OSError, aioredis.RedisError):
            pass
        else:
            via_redis = await authenticate(ProofReplayCache(connection, f"bench{time.time_ns()}:"))
            results |= {"authenticate_dpop_redis_us": round(via_redis["dpop"], 1),
                        "dpop_extra_redis_us": round(via_redis["dpop"] - via_redis["bearer"], 1)}
        finally:
            await connection.aclose()
    print(json.dumps(results))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dpop_verify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proofs", type=int, default=2000, help="proofs per timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best is kept")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                        help="for the Redis replay-cache run ('' to skip)")
    parser.add_argument("--profile", action="store_true", help="cProfile check_proof")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_arguments()))
