"""Treescope rendering of pax modules (``Module.__treescope_repr__``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import treescope  # the `test` extra installs it (`inspect` extra for users)

import pax


class Net(pax.Module):
    def __init__(self, *, rng_key):
        super().__init__()
        k1, k2 = jax.random.split(rng_key)
        self.encoder = pax.Linear(20, 30, rng_key=k1)
        self.norm = pax.LayerNorm(30)
        self.dropout = pax.Dropout(0.1, rng_key=k2)
        self.head = pax.Linear(30, 4, with_bias=False, rng_key=k2)
        self.steps = jnp.zeros((), jnp.int32)  # plain Module: state

    def __call__(self, x):
        return self.head(self.dropout(self.norm(self.encoder(x))))


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_module_renders_in_constructor_form():
    text = treescope.render_to_text(Net(rng_key=jax.random.PRNGKey(0)))
    assert text.startswith("Net(")
    for name in ("encoder=Linear(", "norm=LayerNorm(", "dropout=Dropout(", "head="):
        assert name in text
    # static constructor attributes, array shapes summarised
    assert "in_dim=20" in text and "out_dim=30" in text
    assert "float32(20, 30)" in text and "float32(30, 4)" in text
    assert "PyTree children" not in text  # not the generic pytree fallback


def test_trainable_and_state_are_marked_differently():
    text = treescope.render_to_text(Net(rng_key=jax.random.PRNGKey(0)))
    (weight,) = lines_with(text, "weight=<jax.Array float32(20, 30)")
    assert weight.rstrip().endswith("# trainable")
    (steps,) = lines_with(text, "steps=")
    assert steps.rstrip().endswith("# state")
    (rng,) = lines_with(text, "rng_key=")
    assert rng.rstrip().endswith("# state")
    # frozen parameters are no longer trainable
    frozen = treescope.render_to_text(
        pax.freeze_parameters(pax.Linear(20, 30, rng_key=jax.random.PRNGKey(0)))
    )
    assert lines_with(frozen, "weight=")[0].rstrip().endswith("# state")
    # the HTML view colours the two kinds differently
    html = treescope.render_to_html(
        Net(rng_key=jax.random.PRNGKey(0)), compressed=False
    )
    assert "#1f6fb5" in html and "#b5651d" in html


def test_abstract_and_eval_modules_render():
    net = jax.eval_shape(lambda k: Net(rng_key=k), jax.random.PRNGKey(0))
    text = treescope.render_to_text(net.eval())
    assert "shape=(20, 30)" in text
    assert "training=False" in text
    assert net.eval().encoder.training is False  # the path treescope shows exists
