"""pytest runs every ``>>>`` example in the guides (``docs/**/*.md``).

The Sphinx configuration and the API generator need Sphinx, which only the
``docs`` extra installs, so they are not collected as doctest modules.
"""

import os

import jax
import pytest

os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]
).strip()

collect_ignore = ["conf.py", "_api.py"]
collect_ignore_glob = ["_build/*", "api/*"]


@pytest.fixture(autouse=True)
def _user_numerics():
    """Run the guides under JAX's default rank promotion, as users do.

    tests/conftest.py makes implicit rank promotion an error for the library's
    own tests; when the default test command collects tests/ and docs/ in one
    process that setting would also apply here, and the guides' plain user
    code (``x @ w + b`` with a ``[out]`` bias) would fail.
    """
    before = jax.config.jax_numpy_rank_promotion
    jax.config.update("jax_numpy_rank_promotion", "allow")
    yield
    jax.config.update("jax_numpy_rank_promotion", before)
