"""Shared pytest configuration: strict numerics and a visible-seed key fixture."""

import os

# Most of the suite's time is XLA compiling many small programs; its CPU
# backend compiles them several times faster without its optimisation passes.
# Tests only (numerics are compared with tolerances or between two programs
# compiled alike); set before JAX creates its backend. Subprocess tests that
# set XLA_FLAGS themselves run with the defaults.
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]
).strip()

import jax  # noqa: E402
import pytest
from hypothesis import HealthCheck, settings

# Catch silent broadcasting between arrays of different rank.
jax.config.update("jax_numpy_rank_promotion", "raise")

# The suite compares float32 results with float32 references at tight
# tolerances, so it asks for full float32 matmuls and convolutions. This is
# what CPUs do anyway; GPUs default to TF32/bfloat16 passes (~1e-3 relative
# error), see the README's "Precision" paragraph.
jax.config.update("jax_default_matmul_precision", "highest")

# Hypothesis profiles: "default" is deterministic (derandomized, no example
# database) and small, for every run; "thorough" explores many more random
# examples (the slow property tests use it, or set HYPOTHESIS_PROFILE).
# A failure prints a reproduction blob for `@reproduce_failure`.
settings.register_profile(
    "default",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def seed(request) -> int:
    """A seed derived from the test name, shown in failures via its value."""
    return sum(map(ord, request.node.name)) % 10_000


@pytest.fixture
def key(seed):
    """A raw PRNG key built from `seed` (the seed shows in the failure report)."""
    return jax.random.PRNGKey(seed)
