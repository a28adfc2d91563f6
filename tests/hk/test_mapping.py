"""pax.hk._mapping: one record per native layer with a Haiku twin.

- coverage: every pax.nn / pax.nets class the hk package builds (statically:
  every ``template(...)`` / ``native(...)`` call in its sources; at run time:
  every module built while the hk layers run) has a record, and every record
  is exercised by a case below;
- for each record, ``to_haiku_params`` of the native layer has exactly the
  names, shapes and dtypes, split into params and state, that dm-haiku's
  ``init`` creates for the twin layer, and so does ``pax.hk``'s ``init``
  (whose ``get_parameter`` calls read the same record); the round trip is
  exact;
- a record's parameter/state kinds agree with the native leaves'
  trainability.
"""

from __future__ import annotations

import pathlib
import re

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
import pax.hk as phk
from pax import nets, nn
from pax.hk import _convert, _mapping, _native

from .test_convert import CASES, KEY, assert_same_names_shapes, filled

HK_SOURCES = pathlib.Path(phk.__file__).parent


def _modules(tree):
    """Every pax module in a native module tree (the root included)."""
    found = []

    def visit(m):
        if isinstance(m, pax.Module):
            found.append(m)
            for value in vars(m).values():
                for v in value if isinstance(value, (list, tuple)) else [value]:
                    visit(v)

    visit(tree)
    return found


def _record_cases():
    """Cases whose native module is itself a layer with a record."""
    return [
        c
        for c in CASES
        if _mapping.record_for(jax.eval_shape(lambda c=c: c.native(KEY))) is not None
    ]


RECORD_CASES = _record_cases()


def test_every_native_class_named_in_the_hk_sources_has_a_record():
    pattern = re.compile(r"\b(?:template|native)\(\s*(nn|nets)\.(\w+)")
    named = set()
    for path in HK_SOURCES.rglob("*.py"):
        for pkg, name in pattern.findall(path.read_text()):
            named.add(getattr({"nn": nn, "nets": nets}[pkg], name))
    assert nn.Linear in named and nn.BatchNorm in named  # the scan works
    missing = sorted(c.__name__ for c in named if _mapping.record_for(c) is None)
    assert not missing, f"no pax.hk._mapping record for {missing}"


def test_every_module_the_hk_layers_build_has_a_record(monkeypatch):
    built = set()
    build = _native.Template.build

    def spy(self, arrays):
        built.add(self.type)
        return build(self, arrays)

    monkeypatch.setattr(_native.Template, "build", spy)
    for case in CASES:
        f = phk.transform_with_state(case.haiku_fn(phk))
        params, state = jax.eval_shape(f.init, KEY, *case.inputs())
        jax.eval_shape(f.apply, params, state, KEY, *case.inputs())
    assert nn.EMA in built and nets.VectorQuantizerEMA in built
    missing = sorted(t.__name__ for t in built if _mapping.record_for(t) is None)
    assert not missing, f"no pax.hk._mapping record for {missing}"


def test_every_record_is_exercised():
    covered = set()
    for case in CASES:
        for m in _modules(jax.eval_shape(lambda c=case: c.native(KEY))):
            twin = _mapping.record_for(m)
            if twin is not None:
                covered.add(twin.native)
    untested = sorted(t.__name__ for t in set(_mapping.RECORDS) - covered)
    assert not untested, f"records without a case in test_convert: {untested}"


def test_record_for_honours_subclasses():
    assert _mapping.record_for(nn.DepthwiseConv2D).native is nn.ConvND
    assert _mapping.record_for(nn.InstanceNorm).native is nn.LayerNorm
    assert _mapping.record_for(nn.BatchNorm2D).native is nn.BatchNorm
    assert _mapping.record_for(nn.Sequential) is None


@pytest.mark.parametrize("case", RECORD_CASES, ids=repr)
def test_record_matches_haiku(case):
    inputs = case.inputs()
    fn = case.haiku_fn
    theirs = jax.eval_shape(haiku.transform_with_state(fn(haiku)).init, KEY, *inputs)
    ours_hk = jax.eval_shape(phk.transform_with_state(fn(phk)).init, KEY, *inputs)
    native = filled(jax.eval_shape(lambda: case.native(KEY)), seed=1)
    exported = phk.to_haiku_params(native, **case.kwargs)
    for got, ref in zip(exported, theirs):  # params, then state
        assert_same_names_shapes(got, ref)
    for got, ref in zip(ours_hk, theirs):
        assert_same_names_shapes(got, ref)
    back = phk.from_haiku_params(native, *exported, **case.kwargs)
    for x, y in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(native)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("case", RECORD_CASES, ids=repr)
def test_record_kinds_follow_trainability(case):
    native = jax.eval_shape(lambda: case.native(KEY))
    walk = _convert._entries(native, None, case.kwargs.get("input_ndim"))
    trainable = _convert._trainable_paths(native)
    for e in walk.entries:
        assert (e.kind == "param") == (e.path in trainable), (e.path, e.kind)


def test_fetch_reshapes_to_the_native_layout():
    twin = _mapping.record_for(nn.Conv2D)
    spec = _native.template(nn.Conv2D, 3, 4, 3, data_format="NCHW")
    ctx = _mapping.Context(channels_last=False, spatial_dims=2)

    def f():
        inits = {"w": jnp.ones, "b": jnp.zeros}
        return _mapping.fetch(twin, ctx, spec.shapes, jnp.float32, inits)

    params = phk.transform(f).init(KEY)
    assert params["~"]["b"].shape == (4, 1, 1)  # Haiku's channels-first bias
    arrays = phk.transform(f).apply(params, None)
    assert {k: v.shape for k, v in arrays.items()} == spec.shapes


def test_shape_needs_input_ndim_where_haiku_does():
    bn = nn.BatchNorm(3, True, True, 0.9)
    with pytest.raises(ValueError, match="input_ndim"):
        phk.to_haiku_params(bn)
    params, state = phk.to_haiku_params(bn, input_ndim=3)
    assert params["batch_norm"]["scale"].shape == (1, 1, 3)
    assert state["batch_norm/~/mean_ema"]["average"].shape == (1, 1, 3)
