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

# Catch silent broadcasting between arrays of different rank.
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def seed(request) -> int:
    """A seed derived from the test name, shown in failures via its value."""
    return sum(map(ord, request.node.name)) % 10_000


@pytest.fixture
def key(seed):
    """A raw PRNG key built from `seed` (the seed shows in the failure report)."""
    return jax.random.PRNGKey(seed)
