"""Multi-layer perceptron: ``MLP``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax

from .._core.module import Module
from ..initializers import Initializer
from ..nn._dropout import dropout
from ..nn._linear import Linear
from ..nn._utils import as_array, positive_int, rng_key_or_next, who
from ._arch import mlp_forward


class MLP(Module):
    """A stack of ``Linear`` layers with an activation between them.

    Args:
      in_dim: size of the input's last axis.
      output_sizes: the output size of each ``Linear`` layer, in order.
      w_init: initializer for every layer's ``weight`` (default Haiku's
        ``TruncatedNormal(1 / sqrt(fan_in))``).
      b_init: initializer for every layer's ``bias`` (default zeros); must be
        ``None`` when ``with_bias=False``.
      with_bias: whether the layers have biases.
      activation: applied after every layer but the last (default ``relu``).
      activate_final: also apply ``activation`` (and dropout) after the last
        layer.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[..., in_dim]``, output ``[..., output_sizes[-1]]``. The layers are
    ``layers`` (a tuple of ``pax.nn.Linear``; Haiku names them ``linear_0``,
    ``linear_1``, ...). Trainable: every layer's ``weight`` and ``bias``.

    >>> import jax, jax.numpy as jnp, pax
    >>> mlp = pax.nets.MLP(3, [8, 8, 2], rng_key=jax.random.PRNGKey(0))
    >>> mlp(jnp.ones((5, 3))).shape
    (5, 2)
    >>> mlp.reverse(rng_key=jax.random.PRNGKey(1))(jnp.ones((5, 2))).shape
    (5, 3)
    """

    def __init__(
        self,
        in_dim: int,
        output_sizes: Iterable[int],
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        with_bias: bool = True,
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        activate_final: bool = False,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        if not with_bias and b_init is not None:
            raise ValueError(f"{owner}: `b_init` must be None when with_bias=False")
        if not callable(activation):
            raise TypeError(
                f"{owner}: `activation` must be callable, got {activation!r}"
            )
        self.in_dim = positive_int(in_dim, "in_dim", owner)
        self.output_sizes = tuple(
            positive_int(size, "output_sizes", owner) for size in output_sizes
        )
        if not self.output_sizes:
            raise ValueError(f"{owner}: `output_sizes` must name at least one layer")
        self.w_init = w_init
        self.b_init = b_init
        self.with_bias = bool(with_bias)
        self.activation = activation
        self.activate_final = bool(activate_final)
        keys = jax.random.split(rng_key_or_next(rng_key), len(self.output_sizes))
        sizes = (self.in_dim, *self.output_sizes)
        self.layers = tuple(
            Linear(
                sizes[i],
                sizes[i + 1],
                with_bias=self.with_bias,
                w_init=w_init,
                b_init=b_init,
                rng_key=keys[i],
            )
            for i in range(len(self.output_sizes))
        )

    @property
    def output_size(self) -> int:
        """The size of the output's last axis."""
        return self.output_sizes[-1]

    def __call__(
        self,
        x: jax.Array,
        dropout_rate: float | None = None,
        rng_key: jax.Array | None = None,
    ) -> jax.Array:
        """``[..., in_dim] -> [..., output_size]``.

        With ``dropout_rate``, dropout is applied before each activation (as
        Haiku: after every layer but the last, and after the last one too when
        ``activate_final``) in training mode, using ``rng_key`` (required
        then); in eval mode the rate is ignored and no key is needed.
        """
        x = as_array(x, self)
        shape = x.shape
        if not shape or shape[-1] != self.in_dim:
            raise ValueError(
                f"{who(self)}: expected input with last dimension {self.in_dim}, "
                f"got shape {shape}"
            )
        use_dropout = dropout_rate is not None and self.training
        if use_dropout and rng_key is None:
            raise ValueError(
                f"{who(self)}: dropout in training mode needs a key: "
                "call mlp(x, dropout_rate, rng_key)"
            )
        if dropout_rate is None and rng_key is not None:
            raise ValueError(
                f"{who(self)}: `rng_key` is only used with `dropout_rate`; pass "
                "both or neither"
            )
        drop = None
        if use_dropout:
            keys = iter(jax.random.split(rng_key, len(self.layers)))
            drop = lambda y: dropout(next(keys), dropout_rate, y)
        return mlp_forward(x, self.layers, self.activation, self.activate_final, drop)

    def reverse(
        self,
        activate_final: bool | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ) -> MLP:
        """A new MLP mirroring this one: it maps ``[..., output_size]`` back to
        ``[..., in_dim]`` through the layer sizes in reverse order.

        The new MLP has fresh weights (drawn from ``rng_key``), the same
        initializers, bias setting and activation; ``activate_final`` defaults
        to this MLP's.
        """
        sizes = (self.in_dim, *self.output_sizes)
        return MLP(
            self.output_sizes[-1],
            tuple(reversed(sizes[:-1])),
            w_init=self.w_init,
            b_init=self.b_init,
            with_bias=self.with_bias,
            activation=self.activation,
            activate_final=(
                self.activate_final if activate_final is None else activate_final
            ),
            rng_key=rng_key,
            name=name,
        )
