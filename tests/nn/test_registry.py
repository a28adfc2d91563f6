"""Cross-cutting checks over every registered layer (see registry.py).

All of these run with ``jax_numpy_rank_promotion="raise"`` (tests/conftest.py),
so a layer that broadcasts implicitly fails here.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax

from .registry import all_entries, class_name

ENTRIES = all_entries()
DIFFERENTIABLE = [e for e in ENTRIES if e.differentiable]
FLOAT_INPUT = [e for e in ENTRIES if e.float_input]
VMAP = [e for e in ENTRIES if e.vmap]


def ids(entries):
    return [e.name for e in entries]


def run(module, entry, *args):
    """(new module, output); stateful layers in training mode go through purecall."""
    if entry.stateful and module.training:
        return pax.purecall(module, *args)
    return module, module(*args)


def build(entry, key, dtype=jnp.float32):
    k1, k2 = jax.random.split(key)
    return entry.make(k1), entry.inputs(k2, dtype)


def assert_trees_close(a, b, rtol=1e-5, atol=1e-5):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_registry_is_populated_and_strict():
    names = ids(ENTRIES)
    assert len(names) == len(set(names)), "duplicate registry names"
    for required in ("Linear", "Embed", "Dropout", "Sequential"):
        assert required in names
    assert jax.config.jax_numpy_rank_promotion == "raise"


@pytest.mark.parametrize("entry", ENTRIES, ids=ids(ENTRIES))
def test_eager_equals_jit(entry, key):
    module, args = build(entry, key)
    eager_module, eager_out = run(module, entry, *args)
    jit_module, jit_out = jax.jit(lambda m, *a: run(m, entry, *a))(module, *args)
    assert_trees_close(eager_out, jit_out)
    assert_trees_close(eager_module, jit_module)


@pytest.mark.parametrize("entry", DIFFERENTIABLE, ids=ids(DIFFERENTIABLE))
def test_grad_is_finite_and_module_shaped(entry, key):
    module, args = build(entry, key)
    params = module.parameters()
    assert jax.tree_util.tree_leaves(params), "differentiable entry without params"

    def loss(p):
        _, out = run(module.update_parameters(p), entry, *args)
        return sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(out))

    grads = jax.grad(loss)(params)
    assert type(grads) is type(module)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(bool(jnp.any(g != 0)) for g in leaves)


@pytest.mark.parametrize("entry", VMAP, ids=ids(VMAP))
def test_vmap_over_a_batch_of_inputs(entry, key):
    module, _ = build(entry, key)
    module = module.eval() if entry.stateful else module
    keys = jax.random.split(key, 3)
    batches = [entry.inputs(k, jnp.float32) for k in keys]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *batches)
    out = jax.vmap(lambda *a: module(*a))(*stacked)
    expected = jax.tree_util.tree_map(
        lambda *xs: jnp.stack(xs), *[module(*b) for b in batches]
    )
    assert_trees_close(out, expected)


@pytest.mark.parametrize("entry", FLOAT_INPUT, ids=ids(FLOAT_INPUT))
def test_bfloat16_input_keeps_its_dtype(entry, key):
    module, args = build(entry, key, jnp.bfloat16)
    _, out = run(module, entry, *args)
    for leaf in jax.tree_util.tree_leaves(out):
        assert leaf.dtype == jnp.bfloat16, f"{entry.name}: got {leaf.dtype}"


@pytest.mark.parametrize("entry", ENTRIES, ids=ids(ENTRIES))
def test_repr_and_summary(entry, key):
    module, _ = build(entry, key)
    assert type(module).__name__ == class_name(entry), "name it '<ClassName>-...'"
    text = repr(module)
    assert text.startswith(type(module).__name__)
    summary = module.summary()
    assert summary.splitlines()[0]
    assert len(summary.splitlines()) == 1 + _count_submodules(module)


def _count_submodules(module):
    return sum(1 + _count_submodules(m) for m in module.submodules())


FLOAT64_SCRIPT = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp
    import pax
    from tests.nn.registry import all_entries
    from tests.nn.test_registry import run, build

    assert jax.config.jax_enable_x64
    jax.config.update("jax_numpy_rank_promotion", "raise")
    bad = {}
    for entry in all_entries():
        if not entry.float_input:
            continue
        module, args = build(entry, jax.random.PRNGKey(0), jnp.float64)
        _, out = run(module, entry, *args)
        dtypes = {str(x.dtype) for x in jax.tree_util.tree_leaves(out)}
        if dtypes != {"float64"}:
            bad[entry.name] = sorted(dtypes)
    print(json.dumps(bad))
    """
)


# A sweep over every layer in a fresh x64 process (~1 min): the full run only;
# the families' own float64 tests stay in the fast default.
@pytest.mark.slow
def test_float64_inputs_keep_their_dtype_in_isolation():
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-c", FLOAT64_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {}
