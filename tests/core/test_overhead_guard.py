"""Guard against regressions of the per-node pytree cost of ``pax.Module``.

The benchmark (``benchmarks/core_overhead.py``) holds the real goals; this
test only catches a large regression: a module's flatten or unflatten
becoming much slower than a plain dict's, measured in the same test. The
bounds are about twice what the core costs today (flatten ~0.9x a dict,
unflatten ~3.3x, the round trip ~1.5x on a 2-core CPU), so noise never
fails it; a Python ``flatten`` (instead of the cached C-level read) or an
unflatten that re-classifies attributes would.
"""

import timeit

import jax
import jax.numpy as jnp

import pax

LAYERS = 100


class Dense(pax.Module):
    def __init__(self, weight, bias):
        super().__init__()
        self.weight = weight
        self.bias = bias


class Stack(pax.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = list(layers)


def _trees():
    arrays = [
        (jnp.full((2, 2), i, jnp.float32), jnp.zeros((2,))) for i in range(LAYERS)
    ]
    model = Stack([Dense(w, b) for w, b in arrays])
    raw = {"layers": [{"weight": w, "bias": b} for w, b in arrays]}
    return model, raw


def _ratio(pax_fn, raw_fn, repeats=61, number=5) -> float:
    """Best pax time / best raw time over interleaved repeats.

    The minimum of each is the least disturbed by other processes (a loaded
    CI machine slows some repeats, never speeds one up); many short repeats
    give both sides the same chance of an undisturbed one.
    """
    pax_fn(), raw_fn()  # warm up (first unflatten compiles the maker)
    t_pax, t_raw = [], []
    for _ in range(repeats):
        t_pax.append(timeit.timeit(pax_fn, number=number))
        t_raw.append(timeit.timeit(raw_fn, number=number))
    return min(t_pax) / min(t_raw)


def test_flatten_and_unflatten_stay_near_a_raw_dict():
    model, raw = _trees()
    flat = jax.tree_util.tree_flatten
    unflat = jax.tree_util.tree_unflatten
    model_leaves, model_def = flat(model)
    raw_leaves, raw_def = flat(raw)
    # the two trees hold the same leaves (a dict sorts its keys: other order)
    assert len(model_leaves) == len(raw_leaves) == 2 * LAYERS
    assert {id(x) for x in model_leaves} == {id(x) for x in raw_leaves}

    flatten = _ratio(lambda: flat(model), lambda: flat(raw))
    unflatten = _ratio(
        lambda: unflat(model_def, model_leaves), lambda: unflat(raw_def, raw_leaves)
    )
    assert flatten < 2.0, f"flatten costs {flatten:.2f}x a raw dict (about 0.9x)"
    assert unflatten < 7.0, f"unflatten costs {unflatten:.2f}x a raw dict (about 3.3x)"
    # the rebuilt module is a working module with the same leaves
    rebuilt = unflat(model_def, model_leaves)
    assert isinstance(rebuilt.layers[7], Dense)
    assert rebuilt.layers[7].weight is model_leaves[14]
