"""Shared pytest configuration: strict numerics and a visible-seed key fixture."""

import jax
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
