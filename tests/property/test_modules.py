"""Property tests over every module family (strategies in strategies.py).

For each drawn case, either a correct result or a clear error:

* correct: the documented output shapes and dtypes, finite output for finite
  input, eager equal to ``jax.jit``, ``jax.vmap`` over a new leading axis
  equal to a Python loop (where the call has no cross-batch coupling), and
  the module unchanged by the call (stateful modules in training mode go
  through ``pax.purecall``);
* or a ``ValueError``/``TypeError`` from construction or call whose message
  names the module's class.

Anything else (another exception, NaN from finite input, a silent broadcast:
``jax_numpy_rank_promotion="raise"`` is on) fails.

The default hypothesis profile (tests/conftest.py) runs a few derandomized
examples per family; the ``thorough`` profile, run by the slow
parametrisation below or with ``HYPOTHESIS_PROFILE=thorough``, many more.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import pax

from .strategies import ERROR, FAMILIES

# examples per unit of family weight, by profile (at least one per family)
PER_WEIGHT = {"default": 0.5, "thorough": 10}

TOL = {
    jnp.dtype(jnp.float32): 1e-4,
    jnp.dtype(jnp.float16): 1e-2,
    jnp.dtype(jnp.bfloat16): 5e-2,
}


def run(module, case, *args):
    """``(module after the call, output)``."""
    if case.train_stateful:
        return pax.purecall(module, *args, **case.kwargs)
    return module, module(*args, **case.kwargs)


def assert_close(a, b, what, floor=0.0):
    """Equal within the tolerance of each leaf's dtype, or ``floor`` if larger
    (float32 state computed from bfloat16 input is only as exact as that)."""
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb, f"{what}: structures differ: {ta} vs {tb}"
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype, what
        if not np.issubdtype(x.dtype, np.inexact) and x.dtype.kind != "V":
            np.testing.assert_array_equal(x, y, err_msg=what)
            continue
        tol = max(TOL.get(jnp.dtype(x.dtype), 1e-4), floor)
        x, y = x.astype(np.float64), y.astype(np.float64)
        scale = max(1.0, float(np.max(np.abs(y), initial=0.0)))
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol * scale, err_msg=what)


def leaves_equal(a, b) -> bool:
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    if ta != tb:
        return False
    return all(
        np.array_equal(
            np.asarray(jax.random.key_data(x) if _is_key(x) else x),
            np.asarray(jax.random.key_data(y) if _is_key(y) else y),
        )
        for x, y in zip(la, lb)
    )


def _is_key(x):
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def check_error(case):
    """The case must raise ValueError/TypeError naming the module."""
    with pytest.raises((ValueError, TypeError)) as info:
        module = case.make()
        run(module, case, *case.args)
    message = str(info.value)
    assert any(name in message for name in case.names), (
        f"{case}: the error does not name {case.names}: "
        f"{type(info.value).__name__}: {message}"
    )


def flip(x):
    """A second, different example of the same shape (for vmap vs loop)."""
    if not hasattr(x, "shape") or x.ndim == 0:
        return x
    return jnp.flip(x, axis=-1)


def check_result(case):
    module = case.make()
    before = jax.tree_util.tree_flatten(module)
    new, out = run(module, case, *case.args)

    # documented shapes and dtypes
    spec = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), out)
    assert spec == case.expect, f"{case}: got {spec}"

    # finite output for finite input
    for leaf in jax.tree_util.tree_leaves(out):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            assert bool(jnp.all(jnp.isfinite(leaf))), f"{case}: non-finite output"

    # a stateful call outside purecall: MutationError naming the module first
    if case.plain_raises:
        with pytest.raises(pax.MutationError) as info:
            module(*case.args, **case.kwargs)
        assert str(info.value).startswith(repr(module)), (
            f"{case}: the MutationError does not start with {module!r}: {info.value}"
        )

    # the module itself is unchanged (a purecall returns the new one)
    after = jax.tree_util.tree_flatten(module)
    assert after[1] == before[1], f"{case}: treedef changed by the call"
    assert leaves_equal(module, jax.tree_util.tree_unflatten(*before[::-1])), (
        f"{case}: leaves changed by the call"
    )

    # eager == jit, within the tolerance of the least precise input
    floor = max(
        [
            TOL.get(jnp.dtype(a.dtype), 0.0)
            for a in jax.tree_util.tree_leaves(case.args)
            if hasattr(a, "dtype")
        ]
        + [0.0]
        + [TOL.get(jnp.dtype(case.precision), 0.0) if case.precision else 0.0]
    )

    # values computed independently (hand formulas with the module's arrays)
    if case.reference is not None:
        for label, expected, actual, *dtype in case.reference(module, new, out):
            tol = max([floor] + [TOL.get(jnp.dtype(d), 0.0) for d in dtype])
            check_reference(expected, actual, f"{case}: {label}", tol)
    jit_new, jit_out = jax.jit(lambda m, *a: run(m, case, *a))(module, *case.args)
    assert_close(jit_out, out, f"{case}: jit output", floor)
    if case.train_stateful:
        assert jax.tree_util.tree_structure(jit_new) == jax.tree_util.tree_structure(
            new
        )
        assert_close(
            jax.tree_util.tree_leaves(_no_keys(jit_new)),
            jax.tree_util.tree_leaves(_no_keys(new)),
            f"{case}: jit state",
            floor,
        )

    # vmap over a new leading axis == a loop over it
    if case.vmap and not case.train_stateful:
        second = jax.tree_util.tree_map(flip, case.args)
        stacked = jax.tree_util.tree_map(
            lambda a, b: jnp.stack([a, b]), case.args, second
        )
        vout = jax.vmap(lambda *a: module(*a, **case.kwargs))(*stacked)
        loop = jax.tree_util.tree_map(
            lambda a, b: jnp.stack([a, b]),
            module(*case.args, **case.kwargs),
            module(*second, **case.kwargs),
        )
        assert_close(vout, loop, f"{case}: vmap vs loop", floor)


def check_reference(expected, actual, what, floor):
    """``actual`` equals ``expected`` (numpy, any precision) leaf by leaf, in
    the tolerance of ``actual``'s dtype."""
    le, la = jax.tree_util.tree_leaves(expected), jax.tree_util.tree_leaves(actual)
    assert len(le) == len(la), f"{what}: {len(la)} leaves, expected {len(le)}"
    le = [np.asarray(e).astype(np.asarray(a).dtype) for e, a in zip(le, la)]
    assert_close(la, le, what, floor)


def _no_keys(tree):
    return jax.tree_util.tree_map(
        lambda x: jax.random.key_data(x) if _is_key(x) else x, tree
    )


def check(case):
    if case.expect is ERROR:
        check_error(case)
    else:
        check_result(case)


def profile_name() -> str:
    return os.environ.get("HYPOTHESIS_PROFILE", "default")


def assert_family_holds(family: str, profile: str):
    strategy, weight = FAMILIES[family]
    examples = math.ceil(weight * PER_WEIGHT.get(profile, PER_WEIGHT["thorough"]))

    @settings(
        settings.get_profile(profile),
        max_examples=examples,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def prop(case):
        check(case)

    prop()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family(family):
    assert_family_holds(family, profile_name())


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_thorough(family):
    assert_family_holds(family, "thorough")
