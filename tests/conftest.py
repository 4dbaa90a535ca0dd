"""Hypothesis profiles: `ci` (derandomized, bounded: what .ci/run selects through CI=true),
`dev` (the default), `deep` (run before a stop: pytest --hypothesis-profile=deep)."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, max_examples=30, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=60, deadline=None, print_blob=True)
settings.register_profile(
    "deep", max_examples=500, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def fresh_engine():
    """Every test starts on a fresh, empty, current engine (as homework tests do)."""
    from mytorch.autograd_engine import Autograd

    return Autograd()
