"""``hk.nets.MLP``: Haiku's multi-layer perceptron, from ``hk.Linear`` layers
run in ``pax.nets.MLP``'s order (``pax.nets.mlp_forward``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax

from ... import nets
from .._base import PRNGSequence
from .._linear import Linear
from .._module import Module
from .._utils import dropout


class MLP(Module):
    """Haiku's ``MLP``: ``Linear`` layers ``linear_0``, ``linear_1``, ... created
    in ``__init__`` (so named ``mlp/~/linear_0``), ``activation`` between them.

    ``__call__(inputs, dropout_rate=None, rng=None)``: ``[..., in] ->
    [..., output_sizes[-1]]``; with ``dropout_rate``, dropout (keys from ``rng``)
    before each activation.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.nets.MLP([4, 2])(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
    >>> sorted(params)
    ['mlp/~/linear_0', 'mlp/~/linear_1']
    """

    def __init__(
        self,
        output_sizes: Iterable[int],
        w_init=None,
        b_init=None,
        with_bias: bool = True,
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        activate_final: bool = False,
        name: str | None = None,
    ):
        if not with_bias and b_init is not None:
            raise ValueError("When with_bias=False b_init must not be set.")
        super().__init__(name=name)
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init
        self.activation = activation
        self.activate_final = activate_final
        output_sizes = tuple(output_sizes)
        self.layers = tuple(
            Linear(
                size,
                with_bias=with_bias,
                w_init=w_init,
                b_init=b_init,
                name=f"linear_{i}",
            )
            for i, size in enumerate(output_sizes)
        )
        self.output_size = output_sizes[-1] if output_sizes else None

    def __call__(self, inputs, dropout_rate=None, rng=None):
        if dropout_rate is not None and rng is None:
            raise ValueError("When using dropout an rng key must be passed.")
        if dropout_rate is None and rng is not None:
            raise ValueError("RNG should only be passed when using dropout.")
        drop = None
        if dropout_rate is not None:
            keys = PRNGSequence(rng)  # Haiku's keys: one per dropout, in order
            drop = lambda x: dropout(next(keys), dropout_rate, x)
        return nets.mlp_forward(
            inputs, self.layers, self.activation, self.activate_final, drop
        )

    def reverse(self, activate_final: bool | None = None, name: str | None = None):
        """A new MLP mirroring this one (needs this one to have been called)."""
        if activate_final is None:
            activate_final = self.activate_final
        if name is None:
            name = self.name + "_reversed"
        sizes = tuple(
            layer.input_size
            for layer in reversed(self.layers)
            if layer.input_size is not None
        )
        if len(sizes) != len(self.layers):
            raise ValueError("You cannot reverse an MLP until it has been called.")
        return MLP(
            output_sizes=sizes,
            w_init=self.w_init,
            b_init=self.b_init,
            with_bias=self.with_bias,
            activation=self.activation,
            activate_final=activate_final,
            name=name,
        )
