"""Transformer, TransformerBlock, TransformerLM: numerics against a NumPy
pre-LayerNorm transformer written out here (float64, with the modules' own
weights), causality, cached decoding, dropout modes, gradients, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nets import Transformer, TransformerBlock, TransformerLM

B, T, D, HEADS, LAYERS, VOCAB = 2, 5, 8, 2, 2, 11
KEY = jax.random.PRNGKey(8)


# ---------------------------------------------------------------------------
# the reference: NumPy, float64, every step written out
# ---------------------------------------------------------------------------


def f64(x):
    return np.asarray(x, np.float64)


def ref_layer_norm(x, ln):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * f64(ln.scale) + f64(ln.offset)


def ref_linear(x, lin):
    return x @ f64(lin.weight) + f64(lin.bias)


def ref_gelu(x):  # jax.nn.gelu's default (tanh) form, as Haiku's example
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def ref_attention(x, mha, valid):
    """Causal softmax attention; ``valid [B, T]`` marks real (unpadded) keys."""
    b, t, _ = x.shape
    h, k = mha.num_heads, mha.key_size
    q = ref_linear(x, mha.query_projection).reshape(b, t, h, k)
    kk = ref_linear(x, mha.key_projection).reshape(b, t, h, k)
    v = ref_linear(x, mha.value_projection).reshape(b, t, h, k)
    logits = np.einsum("bthk,bshk->bhts", q, kk) / math.sqrt(k)
    allowed = np.zeros((b, 1, t, t), bool)
    for i in range(t):
        for j in range(i + 1):  # key j <= query i
            allowed[:, 0, i, j] = valid[:, j]
    logits = np.where(allowed, logits, -np.inf)
    some = allowed.any(-1, keepdims=True)  # a padded query may see nothing:
    logits = np.where(some, logits, 0.0)  # give it zeros (its output is unused)
    weights = np.exp(logits - logits.max(-1, keepdims=True)) * allowed
    weights = weights / np.where(some, weights.sum(-1, keepdims=True), 1.0)
    out = np.einsum("bhts,bshk->bthk", weights, v).reshape(b, t, h * k)
    return ref_linear(out, mha.output_projection)


def ref_block(x, block, valid):
    x = x + ref_attention(ref_layer_norm(x, block.norm_1), block.attention, valid)
    h = ref_layer_norm(x, block.norm_2)
    return x + ref_linear(ref_gelu(ref_linear(h, block.dense_1)), block.dense_2)


def ref_transformer(x, net, valid=None):
    x = f64(x)
    valid = np.ones(x.shape[:2], bool) if valid is None else np.asarray(valid)
    for block in net.blocks:  # block i, sliced out of the stack
        x = ref_block(x, block, valid)
    return ref_layer_norm(x, net.final_norm)


def ref_lm(tokens, lm):
    tokens = np.asarray(tokens)
    x = f64(lm.embed.weight)[tokens] + f64(lm.position_embed.weight)[: tokens.shape[1]]
    return ref_linear(ref_transformer(x, lm.transformer), lm.output)


# one compilation per model structure, reused across tests
forward = jax.jit(lambda module, *args, **kwargs: module(*args, **kwargs))
train_call = jax.jit(lambda module, x: pax.purecall(module, x))


def assert_close(actual, expected, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def net():
    return Transformer(D, HEADS, LAYERS, rng_key=jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def x():
    return jax.random.normal(jax.random.PRNGKey(1), (B, T, D))


@pytest.fixture(scope="module")
def lm():
    return TransformerLM(
        VOCAB, D, HEADS, LAYERS, max_length=8, rng_key=jax.random.PRNGKey(2)
    )


@pytest.fixture(scope="module")
def tokens():
    return jax.random.randint(jax.random.PRNGKey(3), (B, T + 2), 0, VOCAB)


# ---------------------------------------------------------------------------
# numerics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_forward_matches_hand_written_pre_layer_norm_stack(net, x, jit):
    expected = ref_transformer(x, net)
    out = forward(net, x) if jit else net(x)
    assert_close(out, expected)
    # the stack really has distinct layers, and the final norm is applied
    assert not np.allclose(net.blocks[0].dense_1.weight, net.blocks[1].dense_1.weight)
    assert np.allclose(np.asarray(out).mean(-1), 0.0, atol=1e-5)


def test_single_block_matches_reference_with_padding_mask(x):
    block = TransformerBlock(D, HEADS, rng_key=jax.random.PRNGKey(4))
    valid = np.array([[True] * T, [False, False] + [True] * (T - 2)])
    mask = pax.nn.combine_masks(pax.nn.causal_mask(T), pax.nn.padding_mask(valid))
    out = block(x, mask=mask)
    expected = ref_block(f64(x), block, valid)
    assert_close(out[0], expected[0])
    assert_close(out[1, 2:], expected[1, 2:])  # padded query rows attend to nothing


def test_padding_mask_hides_padded_positions(net, x):
    valid = jnp.array([[True] * T, [False, False] + [True] * (T - 2)])
    out = forward(net, x, mask=valid)
    assert_close(out[1, 2:], ref_transformer(x, net, valid)[1, 2:])
    changed = x.at[1, :2].set(5.0)  # new values at the padded positions
    assert_close(forward(net, changed, mask=valid)[1, 2:], np.asarray(out[1, 2:]))
    assert not np.allclose(forward(net, changed)[1, 2:], forward(net, x)[1, 2:])


def test_language_model_matches_reference(lm, tokens):
    assert_close(forward(lm, tokens), ref_lm(tokens, lm), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("positional", ["learned", "rotary"])
def test_outputs_depend_only_on_the_past(positional, tokens):
    lm = TransformerLM(
        VOCAB, D, HEADS, LAYERS, 8, positional=positional, rng_key=jax.random.PRNGKey(5)
    )
    logits = forward(lm, tokens)
    for t in (0, 3):
        changed = tokens.at[:, t + 1 :].set((tokens[:, t + 1 :] + 1) % VOCAB)
        new = forward(lm, changed)
        np.testing.assert_array_equal(new[:, : t + 1], logits[:, : t + 1])
        assert not np.allclose(new[:, t + 1], logits[:, t + 1], atol=1e-4)


@pytest.mark.parametrize("positional", ["learned", "rotary"])
def test_cached_decoding_equals_the_full_forward_pass(positional, tokens):
    lm = TransformerLM(
        VOCAB, D, HEADS, LAYERS, 8, positional=positional, rng_key=jax.random.PRNGKey(6)
    )
    full = forward(lm, tokens)
    cache = lm.init_cache(B)
    assert cache.keys.shape == (LAYERS, B, 8, HEADS, D // HEADS)
    decode = jax.jit(lm.decode)
    cache, first = decode(cache, tokens[:, :3])  # a prompt in one chunk
    outs = [first]
    for t in range(3, tokens.shape[1]):  # then token by token
        cache, out = decode(cache, tokens[:, t : t + 1])
        outs.append(out)
    np.testing.assert_array_equal(cache.length, [tokens.shape[1]] * LAYERS)
    assert_close(jnp.concatenate(outs, axis=1), np.asarray(full), rtol=1e-5, atol=1e-5)


def test_transformer_decode_with_a_padding_mask(net, x):
    valid = jnp.array([[True] * T, [False] + [True] * (T - 1)])
    full = forward(net, x, mask=valid)
    cache = net.init_cache(B, T)
    decode = jax.jit(net.decode)
    outs = []
    for t in range(T):
        cache, out = decode(cache, x[:, t : t + 1], mask=valid)
        outs.append(out)
    out = jnp.concatenate(outs, axis=1)
    assert_close(out[0], np.asarray(full[0]))
    assert_close(out[1, 1:], np.asarray(full[1, 1:]))


# ---------------------------------------------------------------------------
# modes, dropout, gradients
# ---------------------------------------------------------------------------


def test_dropout_only_in_training_mode(x):
    net = Transformer(D, HEADS, LAYERS, dropout_rate=0.5, rng_key=jax.random.PRNGKey(7))
    with pytest.raises(pax.MutationError, match=r"Transformer\(.*pax\.purecall"):
        net(x)
    new, y1 = train_call(net, x)
    _, y2 = train_call(new, x)
    keys = net.blocks.layers.dropout_1.rng_key
    assert not np.array_equal(new.blocks.layers.dropout_1.rng_key, keys)
    assert not np.array_equal(keys[0], keys[1])  # one key per layer
    assert not np.allclose(y1, y2)  # fresh masks on every call
    evaluated = forward(net.eval(), x)  # plain call, no state change
    assert not np.allclose(y1, evaluated)
    assert_close(evaluated, ref_transformer(x, net))
    # decode is inference: never any dropout, even in training mode
    _, y0 = jax.jit(net.decode)(net.init_cache(B, T), x[:, :2])
    assert_close(y0, np.asarray(evaluated[:, :2]))


def test_rate_zero_training_mode_is_the_plain_eval_call(net, x):
    assert net.training
    np.testing.assert_array_equal(forward(net, x), forward(net.eval(), x))


def test_gradients_reach_every_parameter_and_are_finite(tokens):
    def loss(model, tokens):
        logits = model(tokens[:, :-1])
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1).mean()

    lm = TransformerLM(VOCAB, D, HEADS, LAYERS, 8, remat=True, rng_key=KEY)
    grads = jax.jit(pax.grad(loss))(lm, tokens)
    paths = jax.tree_util.tree_flatten_with_path(grads)[0]
    assert len(paths) == len(jax.tree_util.tree_leaves(lm.parameters()))
    for path, g in paths:
        where = jax.tree_util.keystr(path)
        assert bool(jnp.all(jnp.isfinite(g))), where
        assert bool(jnp.any(g != 0)), where


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_bad_inputs_name_the_module(net, lm, x, tokens):
    name = r"Transformer\(model_size=8"
    with pytest.raises(ValueError, match=name + r".*\[batch, length, 8\].*\(2, 5, 6\)"):
        net(x[..., :6])
    with pytest.raises(ValueError, match=name + r".*got shape \(5, 8\)"):
        net(x[0])
    with pytest.raises(ValueError, match=name + r".*`mask`.*\(2, 5\)"):
        net(x, mask=jnp.ones((2, 4), bool))
    with pytest.raises(ValueError, match=name + r".*stacked KVCache"):
        net.decode(net.blocks[0].attention.init_cache(B, T), x)
    with pytest.raises(ValueError, match=r"TransformerBlock\(model_size=8"):
        net.blocks[0](x[..., :4])
    lm_name = r"TransformerLM\(vocab_size=11"
    with pytest.raises(ValueError, match=lm_name + r".*\[batch, length\]"):
        lm(tokens[0])
    with pytest.raises(TypeError, match=lm_name + r".*integer tokens"):
        lm(tokens.astype(jnp.float32))
    with pytest.raises(ValueError, match=lm_name + r".*length 9 exceed max_length=8"):
        lm(jnp.zeros((1, 9), jnp.int32))
    with pytest.raises(ValueError, match=lm_name + r".*max_length=9 exceeds"):
        lm.init_cache(1, 9)


def test_bad_constructor_arguments():
    with pytest.raises(
        ValueError, match=r"Transformer: `num_heads` \(=3\) must divide"
    ):
        Transformer(8, 3, 1)
    with pytest.raises(ValueError, match=r"TransformerLM: `positional` must be one of"):
        TransformerLM(VOCAB, D, HEADS, 1, 8, positional="sinusoid")
    with pytest.raises(ValueError, match=r"num_layers"):
        Transformer(8, 2, 0)
