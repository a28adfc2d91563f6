"""TransformerLM(tie_embeddings=True): the readout reads the embedding matrix
(one leaf), against the float64 reference of test_transformer.py; the default
stays the untied model, names and treedef unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nets import TransformerLM

from .test_transformer import HEADS, VOCAB, assert_close, f64, forward, ref_transformer

D, LAYERS, MAX = 8, 1, 6
KEY = jax.random.PRNGKey(3)
TOKENS = jnp.array([[1, 2, 3, 4, 10], [0, 5, 5, 9, 7]])


def make(**kwargs):
    return TransformerLM(VOCAB, D, HEADS, LAYERS, max_length=MAX, rng_key=KEY, **kwargs)


@pytest.fixture(scope="module")
def tied():
    return make(tie_embeddings=True)


@pytest.fixture(scope="module")
def untied():
    return make()


def n_params(m):
    return sum(x.size for x in jax.tree_util.tree_leaves(m.parameters()))


def test_one_matrix_fewer_and_the_names_of_the_untied_model(tied, untied):
    assert tied.tie_embeddings and not untied.tie_embeddings
    assert n_params(untied) - n_params(tied) == VOCAB * D
    assert (
        len(jax.tree_util.tree_leaves(untied)) - len(jax.tree_util.tree_leaves(tied))
        == 1
    )
    keys_t, keys_u = list(tied.state_dict()), list(untied.state_dict())
    assert [k for k in keys_u if k not in keys_t] == [".output.weight"]
    assert keys_t[-1] == ".output.bias" and keys_t[0] == ".embed.weight"

    # pax.tabulate's total agrees
    def total(m):
        line = next(x for x in pax.tabulate(m).splitlines() if x.startswith("total"))
        return int(line.split()[1].replace(",", ""))

    assert total(untied) - total(tied) == VOCAB * D == 88
    # the default is the model it was: same treedef as an explicit False
    assert jax.tree_util.tree_structure(untied) == jax.tree_util.tree_structure(
        make(tie_embeddings=False)
    )
    assert isinstance(untied.output, pax.Linear)


def ref_tied_logits(tokens, lm):
    """Hand-written: embeddings + positions -> transformer -> h @ E.T + b."""
    e = f64(lm.embed.weight)
    x = e[np.asarray(tokens)] + f64(lm.position_embed.weight)[: tokens.shape[1]]
    return ref_transformer(x, lm.transformer) @ e.T + f64(lm.output.bias)


def test_forward_reads_the_embedding_matrix(tied, untied):
    bias = jnp.linspace(-1, 1, VOCAB)  # a non-zero bias, to see it is added
    lm = tied.replace(output=tied.output.replace(bias=bias))
    logits = np.asarray(forward(lm, TOKENS))
    assert_close(logits, ref_tied_logits(TOKENS, lm))
    # same weights everywhere else: tied == untied with output.weight = E.T
    same = untied.replace(
        output=untied.output.replace(weight=tied.embed.weight.T, bias=bias)
    )
    assert_close(forward(same, TOKENS), logits, rtol=1e-6, atol=1e-6)
    # and == pax.Shared on the untied model, the general mechanism
    shared = pax.Shared(same, where=".output.weight", get=lambda m: m.embed.weight.T)
    assert_close(forward(shared, TOKENS), logits, rtol=1e-6, atol=1e-6)
    # cached decoding uses the tied readout too
    _, first = jax.jit(lm.decode)(lm.init_cache(batch_size=2), TOKENS[:, :3])
    assert_close(first, logits[:, :3], rtol=1e-5, atol=1e-5)


def test_gradient_of_the_embedding_sums_both_uses(tied):
    lm = tied
    target = jax.random.normal(jax.random.PRNGKey(1), (*TOKENS.shape, VOCAB))

    def loss(m):
        return jnp.mean((m(TOKENS) - target) ** 2)

    def by_hand(e_in, e_out):  # the model's own modules, readout written out
        x = e_in[TOKENS] + lm.position_embed.weight[None, : TOKENS.shape[1]]
        h = lm.transformer(x)
        logits = h @ e_out.T + lm.output.bias[None, None]
        return jnp.mean((logits - target) ** 2)

    E = lm.embed.weight
    g_in, g_out = jax.jit(jax.grad(by_hand, argnums=(0, 1)))(E, E)
    g = jax.jit(pax.grad(loss))(lm).embed.weight
    np.testing.assert_allclose(g, g_in + g_out, rtol=1e-4, atol=1e-7)
    assert not np.allclose(g, g_in, atol=1e-5)
    assert not np.allclose(g, g_out, atol=1e-5)


def test_bad_tie_argument():
    with pytest.raises(
        TypeError, match="TransformerLM: `tie_embeddings` must be a bool"
    ):
        make(tie_embeddings="yes")
