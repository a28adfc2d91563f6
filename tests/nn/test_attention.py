"""MultiHeadAttention: numerics against a hand-written formula, Haiku parity,
key/value-cache decoding, rotary embeddings, masks, gradients, dtypes, errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nn import (
    KVCache,
    MultiHeadAttention,
    apply_rotary,
    causal_mask,
    combine_masks,
    padding_mask,
)

try:
    from jax import enable_x64
except ImportError:  # older JAX
    from jax.experimental import enable_x64

# -- an independent reference, in float64 numpy ---------------------------------


def np_linear(lin, x):
    y = np.asarray(x, np.float64) @ np.asarray(lin.weight, np.float64)
    if lin.bias is not None:
        y = y + np.asarray(lin.bias, np.float64)
    return y


def np_rotary(x, positions, base=10000.0):
    """Rotate pairs (i, i + D/2) of x [..., T, H, D] by positions[t] * base^(-2i/D)."""
    x = np.asarray(x, np.float64)
    d = x.shape[-1]
    out = np.empty_like(x)
    for i in range(d // 2):
        theta = np.asarray(positions, np.float64) * base ** (-2.0 * i / d)  # [T]
        c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]  # [T, 1]
        a, b = x[..., i], x[..., i + d // 2]  # [..., T, H]
        out[..., i] = a * c - b * s
        out[..., i + d // 2] = b * c + a * s
    return out


def reference(mha, query, key, value, mask=None):
    """Projections, per-head softmax(Q K^T / sqrt(K)) with the mask, output
    projection, written out with the module's own weights."""
    h, k_size, v_size = mha.num_heads, mha.key_size, mha.value_size
    q = np_linear(mha.query_projection, query)
    k = np_linear(mha.key_projection, key)
    v = np_linear(mha.value_projection, value)
    q = q.reshape(q.shape[:-1] + (h, k_size))
    k = k.reshape(k.shape[:-1] + (h, k_size))
    v = v.reshape(v.shape[:-1] + (h, v_size))
    if mha.rotary:
        q = np_rotary(q, np.arange(q.shape[-3]), mha.rotary_base)
        k = np_rotary(k, np.arange(k.shape[-3]), mha.rotary_base)
    logits = np.einsum("...thk,...shk->...hts", q, k) / np.sqrt(k_size)
    if mask is not None:
        logits = np.where(np.asarray(mask), logits, -np.inf)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    weights = weights / weights.sum(axis=-1, keepdims=True)
    out = np.einsum("...hts,...shv->...thv", weights, v)
    return np_linear(mha.output_projection, out.reshape(out.shape[:-2] + (-1,)))


def data(seed, *shape):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def check_close(actual, expected, tol=1e-5):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=tol, atol=tol)


# Most calls go through jit: one compilation per configuration is much faster
# than compiling every primitive eagerly. Eager runs are checked where marked.
call = jax.jit(lambda module, *args: module(*args))
decode = jax.jit(lambda module, *args: module.decode(*args))
rope = jax.jit(apply_rotary, static_argnames="base")


# -- numerics -----------------------------------------------------------------------

CONFIGS = {
    # value_size == key_size: runs through jax.nn.dot_product_attention
    "square": dict(num_heads=2, key_size=4),
    # other sizes everywhere: runs through the einsum fallback
    "sizes": dict(
        num_heads=3,
        key_size=2,
        value_size=5,
        model_size=7,
        query_size=4,
        key_input_size=6,
        value_input_size=3,
        with_bias=False,
    ),
    "rotary": dict(num_heads=2, key_size=4, rotary=True, rotary_base=100.0),
}


def make_inputs(mha, seed, lead=(2,), t=5, s=5):
    q = data(seed, *lead, t, mha.query_size)
    k = data(seed + 1, *lead, s, mha.key_input_size)
    v = data(seed + 2, *lead, s, mha.value_input_size)
    return q, k, v


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
@pytest.mark.parametrize("masking", ["none", "causal+padding"])
def test_matches_hand_written_attention(config, masking, key, seed):
    mha = MultiHeadAttention(**CONFIGS[config], rng_key=key)
    q, k, v = make_inputs(mha, seed)
    mask = None
    if masking == "causal+padding":
        valid = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
        mask = combine_masks(causal_mask(5), padding_mask(valid))
        assert mask.shape == (2, 1, 5, 5)
    expected = reference(mha, q, k, v, mask)
    check_close(call(mha, q, k, v, mask), expected)
    if masking == "causal+padding" and config == "square":
        check_close(mha(q, k, v, mask), expected)  # eager too (see also registry)


def test_masks_change_the_result_where_they_should(key, seed):
    mha = MultiHeadAttention(**CONFIGS["square"], rng_key=key)
    q, k, v = make_inputs(mha, seed)
    full, causal = call(mha, q, k, v), call(mha, q, k, v, causal_mask(5))
    # the last query sees every key under both; earlier ones do not
    check_close(causal[:, -1], np.asarray(full[:, -1]))
    assert np.abs(np.asarray(causal[:, 0] - full[:, 0])).max() > 1e-3
    # a padded key does not influence anything: changing it changes no output
    mask = padding_mask(np.array([[1, 1, 1, 1, 0]] * 2, bool))
    k2, v2 = k.copy(), v.copy()
    k2[:, -1] += 10.0
    v2[:, -1] -= 10.0
    check_close(call(mha, q, k2, v2, mask), np.asarray(call(mha, q, k, v, mask)))


@pytest.mark.parametrize(
    "lead, config", [((), "sizes"), ((2, 3), "square")], ids=["unbatched", "2-axes"]
)
def test_leading_axes(lead, config, key, seed):
    mha = MultiHeadAttention(**CONFIGS[config], rng_key=key)
    q, k, v = make_inputs(mha, seed, lead=lead, t=4, s=6)
    # a mask over the last key, per batch element: rank len(lead) + 3
    mask = np.ones((*lead, 1, 1, 6), bool)
    mask[..., 0] = False
    out = call(mha, q, k, v, mask)
    assert out.shape == (*lead, 4, mha.model_size)
    check_close(out, reference(mha, q, k, v, mask))


def test_float64_keeps_float64_precision(key, seed):
    # logits and softmax in float64 for float64 inputs (not float32)
    with enable_x64():
        mha = MultiHeadAttention(2, 4, rng_key=key)
        mha = mha.map(lambda w: jnp.asarray(w, jnp.float64))
        q, k, v = (x.astype(np.float64) for x in make_inputs(mha, seed))
        out = call(mha, q, k, v, causal_mask(5))
        assert out.dtype == jnp.float64
        err = np.abs(np.asarray(out) - reference(mha, q, k, v, causal_mask(5)))
    assert err.max() < 1e-12


# -- Haiku parity -------------------------------------------------------------------


# key_size 3 and 5: 1 / sqrt(K) is inexact, so scaling the logits by it
# differs in the last bit from Haiku's division by sqrt(K)
PARITY_CONFIGS = {
    **CONFIGS,
    "key_size_3": dict(num_heads=2, key_size=3),
    "key_size_5": dict(num_heads=3, key_size=5, value_size=2),
}


@pytest.mark.parametrize(
    "config, masked",
    [
        ("square", True),
        ("sizes", False),
        ("sizes", True),
        ("key_size_3", False),
        ("key_size_3", True),
        ("key_size_5", True),
    ],
)
def test_parity_with_haiku(config, masked, key, seed):
    # batch 2; bit-identical: the same order of floating-point operations
    mha = MultiHeadAttention(**PARITY_CONFIGS[config], rng_key=key)
    q, k, v = make_inputs(mha, seed)
    mask = None
    if masked:
        valid = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
        mask = np.asarray(combine_masks(causal_mask(5), padding_mask(valid)))

    def forward(q, k, v, mask):
        return hk.MultiHeadAttention(
            num_heads=mha.num_heads,
            key_size=mha.key_size,
            w_init=hk.initializers.VarianceScaling(1.0),
            value_size=mha.value_size,
            model_size=mha.model_size,
            with_bias=mha.with_bias,
        )(q, k, v, mask)

    f = hk.transform(forward)
    # Haiku's parameter tree (names and shapes) without compiling its init;
    # values drawn here, so biases are non-zero too
    shapes = jax.eval_shape(f.init, key, q, k, v, mask)
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(
        lambda s: rng.normal(size=s.shape).astype(np.float32) / 2, shapes
    )
    replaced = {}
    for ours, theirs in [
        ("query_projection", "query"),
        ("key_projection", "key"),
        ("value_projection", "value"),
        ("output_projection", "linear"),
    ]:
        p = params[f"multi_head_attention/{theirs}"]
        lin = getattr(mha, ours)
        assert lin.weight.shape == p["w"].shape
        assert ("b" in p) == mha.with_bias
        replaced[ours] = lin.replace(weight=p["w"], bias=p.get("b"))
    mha = mha.replace(**replaced)
    expected = jax.jit(f.apply)(params, None, q, k, v, mask)
    np.testing.assert_array_equal(call(mha, q, k, v, mask), np.asarray(expected))


def test_default_init_is_variance_scaling(key):
    mha = MultiHeadAttention(4, 64, w_init_scale=2.0, with_bias=True, rng_key=key)
    std = np.sqrt(2.0 / 256)  # VarianceScaling(2.0, "fan_in"), fan_in = 256
    for lin in mha.submodules():
        w = np.asarray(lin.weight)
        assert w.shape == (256, 256)
        assert abs(w.std() / std - 1) < 0.03
        assert np.abs(w).max() <= 2 * std / 0.87962566 + 1e-6  # truncated at 2 sigma
        np.testing.assert_array_equal(lin.bias, np.zeros(256))
    custom = MultiHeadAttention(2, 3, w_init=pax.initializers.Constant(0.5))
    np.testing.assert_array_equal(custom.output_projection.weight, np.full((6, 6), 0.5))


def test_repr_names_and_submodules(key):
    mha = MultiHeadAttention(**CONFIGS["sizes"], rng_key=key)
    assert repr(mha).startswith("MultiHeadAttention(num_heads=3, key_size=2")
    assert "value_size=5" in repr(mha) and "rotary=False" in repr(mha)
    names = [m.name for m in mha.submodules()]
    assert names == ["query", "key", "value", "linear"]
    assert mha.query_projection.weight.shape == (4, 6)  # [query_size, H*K]
    assert mha.key_projection.weight.shape == (6, 6)  # [key_input_size, H*K]
    assert mha.value_projection.weight.shape == (3, 15)  # [value_input_size, H*V]
    assert mha.output_projection.weight.shape == (15, 7)  # [H*V, model_size]
    assert "└── Linear(in_dim=15, out_dim=7" in mha.summary()
    default = MultiHeadAttention(2, 4, rng_key=key)
    sizes = (default.value_size, default.model_size, default.query_size)
    assert sizes == (4, 8, 8)
    assert (default.key_input_size, default.value_input_size) == (8, 8)


# -- key/value cache -------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
def test_step_by_step_decoding_equals_full_causal_attention(config, key, seed):
    # decode needs no shared input: query, key and value of one position may
    # differ in size (the "sizes" configuration), as long as they are aligned
    mha = MultiHeadAttention(**CONFIGS[config], rng_key=key)
    q, k, v = make_inputs(mha, seed)  # [2, 5, *]
    full = np.asarray(call(mha, q, k, v, causal_mask(5)))
    cache = mha.init_cache(batch_size=2, max_length=7)
    outs = []
    for t in range(5):
        span = slice(t, t + 1)
        cache, y = decode(mha, cache, q[:, span], k[:, span], v[:, span])
        assert y.shape == (2, 1, mha.model_size)
        outs.append(np.asarray(y))
    check_close(np.concatenate(outs, axis=1), full)
    assert int(cache.length) == 5
    np.testing.assert_array_equal(cache.keys[:, 5:], 0.0)  # not written yet


def test_decoding_in_scan_and_in_chunks(key, seed):
    mha = MultiHeadAttention(**CONFIGS["rotary"], rng_key=key)
    x = data(seed, 2, 5, 8)
    full = np.asarray(call(mha, x, x, x, causal_mask(5)))

    def body(cache, step):  # step: [B, D]
        step = step[:, None]
        cache, y = mha.decode(cache, step, step, step)
        return cache, y[:, 0]

    empty = mha.init_cache(2, 7)
    final, ys = jax.jit(lambda c, xs: jax.lax.scan(body, c, xs))(
        empty, jnp.swapaxes(x, 0, 1)
    )
    check_close(jnp.swapaxes(ys, 0, 1), full)
    assert int(final.length) == 5
    assert int(empty.length) == 0  # decode returned a new cache; the old is intact
    np.testing.assert_array_equal(empty.keys, 0.0)

    # a prefill of 3 positions, then 2 at once
    cache, a = decode(mha, empty, x[:, :3], x[:, :3], x[:, :3])
    cache, b = decode(mha, cache, x[:, 3:], x[:, 3:], x[:, 3:])
    check_close(np.concatenate([a, b], axis=1), full)
    np.testing.assert_allclose(cache.keys, final.keys, rtol=1e-5, atol=1e-6)


def test_decoding_with_a_padding_mask(key, seed):
    mha = MultiHeadAttention(**CONFIGS["rotary"], rng_key=key)
    x = data(seed, 2, 5, 8)
    valid = np.array([[1, 1, 1, 1, 1], [1, 0, 1, 1, 0]], bool)
    full = call(mha, x, x, x, combine_masks(causal_mask(5), padding_mask(valid)))
    valid_cache = np.ones((2, 7), bool)
    valid_cache[:, :5] = valid
    cache = mha.init_cache(2, 7)
    outs = []
    for t in range(5):
        s = x[:, t : t + 1]
        cache, y = decode(mha, cache, s, s, s, padding_mask(valid_cache))
        outs.append(y)
    # every query (padded ones too) has a valid key at or before it, so all
    # positions are comparable
    check_close(np.concatenate(outs, axis=1), np.asarray(full))


def test_bfloat16_cache_and_inputs(key, seed):
    mha = MultiHeadAttention(2, 4, rng_key=key)
    x = data(seed, 1, 3, 8)
    cache = mha.init_cache(1, 4, dtype=jnp.bfloat16)
    assert cache.keys.dtype == jnp.bfloat16
    xb = jnp.asarray(x, jnp.bfloat16)
    cache, y = decode(mha, cache, xb, xb, xb)
    assert y.dtype == jnp.bfloat16
    full = np.asarray(call(mha, x, x, x, causal_mask(3)))
    np.testing.assert_allclose(np.asarray(y, np.float32), full, atol=0.1, rtol=0.1)


def test_kv_cache_module():
    cache = KVCache(3, 7, num_heads=2, key_size=4, value_size=5)
    assert cache.keys.shape == (3, 7, 2, 4) and cache.values.shape == (3, 7, 2, 5)
    assert cache.length.dtype == jnp.int32 and int(cache.length) == 0
    assert (cache.batch_size, cache.max_length) == (3, 7)
    # state only: nothing trainable
    assert jax.tree_util.tree_leaves(cache.parameters()) == []
    with pytest.raises(pax.MutationError):
        cache.length = cache.length + 1


# -- rotary -----------------------------------------------------------------------


def test_apply_rotary_matches_formula(seed):
    x = data(seed, 2, 5, 3, 6)
    positions = np.array([0, 1, 2, 7, 30])
    out = rope(x, positions, base=50.0)
    assert out.shape == x.shape and out.dtype == jnp.float32
    check_close(out, np_rotary(x, positions, base=50.0))
    # per-batch positions [B, T]
    pos2 = np.stack([positions, positions + 3])
    out2 = rope(x, pos2, base=50.0)
    check_close(out2[1], np_rotary(x[1], positions + 3, base=50.0))
    # position 0 is the identity; rotations keep norms
    check_close(out[:, 0], x[:, 0])
    check_close(
        np.linalg.norm(np.asarray(out), axis=-1), np.linalg.norm(x, axis=-1), tol=1e-4
    )
    # the pairing is (i, i + D/2): rotating only dim 0 moves mass to dim 3
    e0 = np.zeros((1, 1, 1, 6), np.float32)
    e0[..., 0] = 1.0
    rotated = np.asarray(rope(e0, np.array([1.0]), base=50.0))[0, 0, 0]
    check_close(rotated, np.array([np.cos(1.0), 0, 0, np.sin(1.0), 0, 0]))


def test_rotary_scores_depend_only_on_position_differences(seed):
    q, k = data(seed, 8), data(seed + 1, 8)
    qs = np.tile(q, (5, 1)).reshape(1, 5, 1, 8)  # one vector at 5 "positions"
    ks = np.tile(k, (5, 1)).reshape(1, 5, 1, 8)
    q_pos, k_pos = np.array([3, 4, 8, 43, 3]), np.array([1, 2, 6, 41, 2])
    scores = np.sum(np.asarray(rope(qs, q_pos) * rope(ks, k_pos)), axis=-1).ravel()
    # the first four pairs are two positions apart: same score
    np.testing.assert_allclose(scores[1:4], scores[0], rtol=1e-4, atol=1e-4)
    assert abs(scores[4] - scores[0]) > 1e-3  # a different difference changes it
    # and the module uses it: rotary attention is not permutation-equivariant
    plain = MultiHeadAttention(**CONFIGS["square"], rng_key=jax.random.PRNGKey(0))
    rotary = MultiHeadAttention(**CONFIGS["rotary"], rng_key=jax.random.PRNGKey(0))
    x = data(seed, 2, 5, 8)
    perm = np.array([2, 0, 4, 3, 1])
    xp = x[:, perm]
    check_close(call(plain, xp, xp, xp), call(plain, x, x, x)[:, perm])
    moved = call(rotary, xp, xp, xp) - call(rotary, x, x, x)[:, perm]
    assert np.abs(np.asarray(moved)).max() > 1e-3


# -- gradients and dtypes ----------------------------------------------------------


@pytest.mark.parametrize("config", ["square", "sizes"])
def test_grad_is_finite_and_module_shaped(config, key, seed):
    mha = MultiHeadAttention(**CONFIGS[config], rng_key=key)
    q, k, v = make_inputs(mha, seed)
    mask = causal_mask(5)
    grads = jax.jit(pax.grad(lambda m: jnp.sum(m(q, k, v, mask) ** 2)))(mha)
    assert type(grads) is MultiHeadAttention
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(
        mha.parameters()
    )
    for attr in ("query", "key", "value", "output"):
        g = getattr(grads, f"{attr}_projection").weight
        assert g.shape == getattr(mha, f"{attr}_projection").weight.shape
        assert bool(jnp.all(jnp.isfinite(g)))
        assert bool(jnp.any(g != 0))


@pytest.mark.parametrize("config", ["square", "sizes"])
def test_bfloat16_in_bfloat16_out(config, key, seed):
    mha = MultiHeadAttention(**CONFIGS[config], rng_key=key)
    q, k, v = make_inputs(mha, seed)
    out = call(mha, *(jnp.asarray(x, jnp.bfloat16) for x in (q, k, v)), causal_mask(5))
    assert out.dtype == jnp.bfloat16
    expected = reference(mha, q, k, v, causal_mask(5))
    np.testing.assert_allclose(np.asarray(out, np.float32), expected, atol=0.1)


# -- helpers and errors -----------------------------------------------------------


def test_mask_helpers():
    np.testing.assert_array_equal(
        causal_mask(4), np.tril(np.ones((4, 4), bool))[None, None]
    )
    m = padding_mask(np.array([[1, 0, 1], [0, 0, 1]]))
    assert m.shape == (2, 1, 1, 3) and m.dtype == jnp.bool_
    np.testing.assert_array_equal(
        m[:, 0, 0], [[True, False, True], [False, False, True]]
    )
    both = combine_masks(None, causal_mask(3), m)
    np.testing.assert_array_equal(
        both, np.tril(np.ones((3, 3), bool))[None, None] & np.asarray(m)
    )
    assert combine_masks(None, None) is None


def test_errors(key):
    mha = MultiHeadAttention(2, 4, rng_key=key)
    x = jnp.ones((2, 5, 8))
    with pytest.raises(ValueError, match=r"MultiHeadAttention\(num_heads=2.*mask of "):
        mha(x, x, x, causal_mask(6))
    with pytest.raises(ValueError, match=r"mask of shape \(5, 5\) cannot broadcast"):
        mha(x, x, x, jnp.ones((5, 5), bool))
    with pytest.raises(
        ValueError, match=r"mask of shape \(3, 1, 1, 5\).*\(2, 2, 5, 5\)"
    ):
        mha(x, x, x, jnp.ones((3, 1, 1, 5), bool))
    with pytest.raises(
        ValueError, match=r"MultiHeadAttention.*`query` with last dimension 8, got"
    ):
        mha(jnp.ones((2, 5, 7)), x, x)
    with pytest.raises(ValueError, match="`value` with last dimension 8"):
        mha(x, x, jnp.ones((2, 5, 3)))
    with pytest.raises(ValueError, match="must share their leading"):
        mha(x, jnp.ones((3, 5, 8)), jnp.ones((3, 5, 8)))
    with pytest.raises(ValueError, match="`key` and `value` their length S"):
        mha(x, x, jnp.ones((2, 4, 8)))
    with pytest.raises(ValueError, match=r"expected `query` of shape"):
        mha(jnp.ones((8,)), x, x)
    for kwargs, arg in [
        (dict(num_heads=0, key_size=4), "num_heads"),
        (dict(num_heads=2, key_size=-1), "key_size"),
        (dict(num_heads=2, key_size=4, value_size=0), "value_size"),
        (dict(num_heads=2, key_size=4, model_size=0), "model_size"),
        (dict(num_heads=2, key_size=4, query_size=-3), "query_size"),
        (dict(num_heads=2, key_size=4, key_input_size=0), "key_input_size"),
        (dict(num_heads=2, key_size=4, value_input_size=0), "value_input_size"),
    ]:
        with pytest.raises(ValueError, match=f"MultiHeadAttention: `{arg}` must be"):
            MultiHeadAttention(**kwargs)
    with pytest.raises(ValueError, match="`w_init_scale` must be > 0"):
        MultiHeadAttention(2, 4, 0.0)
    with pytest.raises(ValueError, match="`rotary=True` needs an even `key_size`"):
        MultiHeadAttention(2, 3, rotary=True)
    with pytest.raises(ValueError, match="`length` must be a positive int"):
        causal_mask(0)
    with pytest.raises(ValueError, match=r"padding_mask: expected a \[batch, length\]"):
        padding_mask(jnp.ones((2, 1, 3)))
    with pytest.raises(ValueError, match="combine_masks: every mask must have rank 4"):
        combine_masks(jnp.ones((3, 3), bool))
    with pytest.raises(ValueError, match="apply_rotary: the last axis of `x` must"):
        apply_rotary(jnp.ones((1, 2, 1, 3)), jnp.arange(2))
    with pytest.raises(ValueError, match=r"apply_rotary: `positions` of shape \(3,\)"):
        apply_rotary(jnp.ones((1, 2, 1, 4)), jnp.arange(3))


def test_decode_errors(key):
    mha = MultiHeadAttention(2, 4, rng_key=key)
    x = jnp.ones((2, 1, 8))
    cache = mha.init_cache(2, 2)
    cache, _ = decode(mha, cache, x, x, x)
    cache, _ = decode(mha, cache, x, x, x)  # full now (jit cannot check that)
    assert int(cache.length) == 2
    with pytest.raises(
        ValueError, match="the cache holds 2 of 2 positions; cannot add"
    ):
        mha.decode(cache, x, x, x)
    with pytest.raises(ValueError, match="same batch size as the cache"):
        mha.decode(mha.init_cache(3, 4), x, x, x)
    with pytest.raises(ValueError, match=r"does not fit this module"):
        mha.decode(KVCache(2, 4, num_heads=1, key_size=4), x, x, x)
    with pytest.raises(TypeError, match="`cache` must be a KVCache"):
        mha.decode({}, x, x, x)
    with pytest.raises(ValueError, match=r"expected `query` of shape \[batch, length"):
        mha.decode(mha.init_cache(2, 4), jnp.ones((2, 1, 1, 8)), x, x)
    with pytest.raises(ValueError, match="mask of shape"):
        mha.decode(mha.init_cache(2, 4), x, x, x, mask=jnp.ones((2, 1, 1, 3), bool))
