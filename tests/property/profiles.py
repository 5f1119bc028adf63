"""How many examples the properties run: `HYPOTHESIS_PROFILE=thorough` for a deep run.

Two hypothesis profiles, both without deadlines (each example makes real HTTP
and Redis round trips) and allowing the function-scoped fixtures (one gateway
serves every example of a test; each example drops the gateway's cached
answers itself):

- ``property-ci`` (the default, what CI runs): 150 examples of the `child`
  property and 60 of `findChildren`, about 15 s together;
- ``thorough`` (``HYPOTHESIS_PROFILE=thorough``): 2,000 and 800, about 3 min.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "property-ci", max_examples=150, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("thorough", settings.get_profile("property-ci"), max_examples=2000)

PROFILE_NAME = ("thorough" if os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
                else "property-ci")
PROFILE = settings.get_profile(PROFILE_NAME)
# Generous per-example budgets for pytest-timeout (an example takes ~20-60 ms).
SECONDS_PER_EXAMPLE = 0.5


def examples(share: float = 1.0) -> settings:
    """The profile's settings with `share` of its examples."""
    return settings(PROFILE, max_examples=max(10, round(PROFILE.max_examples * share)))


def timeout(share: float = 1.0) -> float:
    """A pytest-timeout for a property running `examples(share)` (plus shrinking)."""
    return 60 + 3 * SECONDS_PER_EXAMPLE * max(10, round(PROFILE.max_examples * share))
