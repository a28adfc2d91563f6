"""Convolutional LSTMs: ``ConvNDLSTM`` and ``Conv1DLSTM/Conv2DLSTM/Conv3DLSTM``.

One implementation: the 1-3D classes are ``ConvNDLSTM`` with
``num_spatial_dims`` fixed. The math and parameter layout are Haiku's (two
``SAME`` convolutions with biases, ``input_to_hidden`` and
``hidden_to_hidden``, each with ``4 * output_channels`` outputs in the gate
order i, g, f, o); the calling convention is PAX's ``core(state, x) ->
(state, y)``. Unlike Haiku's ``input_shape`` (spatial sizes only), PAX's
includes the channel count, so the parameters exist as soon as the module is
built. dtypes as for :class:`pax.LSTM`: integer input gives float32 output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..initializers import Initializer
from ._conv import ConvND
from ._recurrent import (
    LSTMState,
    RNNCore,
    check_input,
    check_state,
    lstm_update,
    state_dtype,
    unpack_lstm_state,
    zeros_state,
)
from ._utils import compute_dtype, positive_int, replicate, rng_key_or_next, who

__all__ = ["ConvNDLSTM", "Conv1DLSTM", "Conv2DLSTM", "Conv3DLSTM"]


class ConvNDLSTM(RNNCore):
    """N-d convolutional LSTM (Shi et al., 2015), Haiku's equations.

    With ``*`` a ``SAME``, stride-1 convolution and ``[i, g, f, o]`` the
    channel blocks of ``W_x * x + b_x + W_h * h + b_h``::

        c' = sigmoid(f + forget_gate_bias) * c + sigmoid(i) * tanh(g)
        h' = sigmoid(o) * tanh(c')

    Args:
      num_spatial_dims: number of spatial dimensions ``n`` (>= 1).
      input_shape: the shape of one input example, channels last:
        ``(*spatial, C)`` (``n + 1`` positive ints). Haiku's ``input_shape``
        is ``spatial`` only.
      output_channels: channels ``O`` of the hidden and cell states.
      kernel_shape: kernel size of both convolutions, an int or ``n`` ints.
      forget_gate_bias: constant added to the forget gate's pre-activation;
        default 1.0, the value Haiku's ConvLSTMs always add.
      w_i_init: initializer for ``input_to_hidden.weight``
        ``[*kernel_shape, C, 4 O]``. Default (Haiku's):
        ``TruncatedNormal(stddev=1 / sqrt(prod(kernel_shape) * C))``.
      w_h_init: initializer for ``hidden_to_hidden.weight``
        ``[*kernel_shape, O, 4 O]``. Default:
        ``TruncatedNormal(stddev=1 / sqrt(prod(kernel_shape) * O))``.
      b_init: initializer for both biases ``[4 O]``. Default: zeros.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Submodules ``input_to_hidden = ConvND(n, C, 4 O, kernel_shape)`` and
    ``hidden_to_hidden = ConvND(n, O, 4 O, kernel_shape)`` (Haiku's names).

    Shapes: input ``x`` ``[B, *spatial, C]``, state ``LSTMState(hidden,
    cell)`` with both ``[B, *spatial, O]``, output ``[B, *spatial, O]`` (the
    new hidden state); without the ``B`` axis for unbatched use.

    >>> import jax, jax.numpy as jnp, pax
    >>> key = jax.random.PRNGKey(0)
    >>> core = pax.ConvNDLSTM(2, (8, 8, 3), 3, kernel_shape=3, rng_key=key)
    >>> state, y = core(core.initial_state(2), jnp.ones((2, 8, 8, 3)))
    >>> y.shape, state.cell.shape
    ((2, 8, 8, 3), (2, 8, 8, 3))
    """

    def __init__(
        self,
        num_spatial_dims: int,
        input_shape: Sequence[int],
        output_channels: int,
        kernel_shape: int | Sequence[int],
        forget_gate_bias: float = 1.0,
        w_i_init: Initializer | None = None,
        w_h_init: Initializer | None = None,
        b_init: Initializer | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        n = positive_int(num_spatial_dims, "num_spatial_dims", owner)
        self.num_spatial_dims = n
        if isinstance(input_shape, (str, bytes)) or not isinstance(
            input_shape, Sequence
        ):
            raise TypeError(
                f"{owner}: `input_shape` must be a sequence of ints, "
                f"got {input_shape!r}"
            )
        if len(input_shape) != n + 1:
            raise ValueError(
                f"{owner}: `input_shape` must list {n + 1} sizes (the {n} spatial "
                f"sizes, then the channels), got {tuple(input_shape)}"
            )
        self.input_shape = tuple(
            positive_int(s, "input_shape", owner) for s in input_shape
        )
        self.output_channels = positive_int(output_channels, "output_channels", owner)
        self.kernel_shape = replicate(kernel_shape, n, "kernel_shape", owner)
        self.forget_gate_bias = float(forget_gate_bias)
        o = self.output_channels
        i_key, h_key = jax.random.split(rng_key_or_next(rng_key))
        self.input_to_hidden = ConvND(
            n,
            self.input_shape[-1],
            4 * o,
            self.kernel_shape,
            w_init=w_i_init,
            b_init=b_init,
            rng_key=i_key,
        )
        self.hidden_to_hidden = ConvND(
            n,
            o,
            4 * o,
            self.kernel_shape,
            w_init=w_h_init,
            b_init=b_init,
            rng_key=h_key,
        )

    @property
    def state_shape(self) -> tuple[int, ...]:
        """Shape ``(*spatial, O)`` of one example's hidden (and cell) state."""
        return (*self.input_shape[:-1], self.output_channels)

    def initial_state(
        self, batch_size: int | None, *, dtype: Any = jnp.float32
    ) -> LSTMState:
        """Zeros: ``LSTMState`` of two ``[batch_size, *spatial, O]`` arrays
        (no batch axis for ``batch_size=None``)."""
        h = zeros_state(batch_size, self.state_shape, dtype, type(self).__name__)
        return LSTMState(hidden=h, cell=h)

    def __call__(self, state: LSTMState, x: jax.Array) -> tuple[LSTMState, jax.Array]:
        """``(LSTMState([B, *spatial, O] x 2), [B, *spatial, C]) ->
        (LSTMState, [B, *spatial, O])``."""
        n = self.num_spatial_dims
        x = check_input(self, x, self.input_shape)
        if x.ndim not in (n + 1, n + 2):
            raise ValueError(
                f"{who(self)}: expected input of shape [batch, "
                f"{', '.join(map(str, self.input_shape))}] or without the batch "
                f"axis, got shape {tuple(x.shape)}"
            )
        hidden, cell = unpack_lstm_state(self, state)
        hidden = check_state(self, "hidden", hidden, x, self.state_shape, n + 1)
        cell = check_state(self, "cell", cell, x, self.state_shape, n + 1)
        with jax.named_scope(f"pax.nn.{type(self).__name__}"):
            dtype = compute_dtype(x, self.input_to_hidden.weight)
            gates = self.input_to_hidden(x.astype(dtype)).astype(
                dtype
            ) + self.hidden_to_hidden(hidden.astype(dtype)).astype(dtype)
            h, c = lstm_update(gates, cell.astype(dtype), self.forget_gate_bias)
            new = LSTMState(
                hidden=h.astype(state_dtype(hidden, dtype)),
                cell=c.astype(state_dtype(cell, dtype)),
            )
            return new, h


class Conv1DLSTM(ConvNDLSTM):
    """1-d convolutional LSTM: :class:`ConvNDLSTM` with ``num_spatial_dims=1``.

    Args:
      input_shape: one example's shape ``(W, C)``.
      output_channels: channels ``O`` of the states and output.
      kernel_shape: kernel width, an int or a 1-sequence.
      forget_gate_bias: added to the forget gate (default 1.0, as Haiku).
      w_i_init: initializer for ``input_to_hidden.weight`` ``[k, C, 4 O]``.
      w_h_init: initializer for ``hidden_to_hidden.weight`` ``[k, O, 4 O]``.
      b_init: initializer for both biases ``[4 O]`` (default zeros).
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Shapes: input ``[B, W, C]``, state ``LSTMState`` of two ``[B, W, O]``,
    output ``[B, W, O]``; the batch axis is optional.

    >>> import jax, jax.numpy as jnp, pax
    >>> core = pax.Conv1DLSTM((10, 3), 3, 3, rng_key=jax.random.PRNGKey(0))
    >>> core(core.initial_state(2), jnp.ones((2, 10, 3)))[1].shape
    (2, 10, 3)
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        output_channels: int,
        kernel_shape: int | Sequence[int],
        forget_gate_bias: float = 1.0,
        w_i_init: Initializer | None = None,
        w_h_init: Initializer | None = None,
        b_init: Initializer | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            1,
            input_shape,
            output_channels,
            kernel_shape,
            forget_gate_bias,
            w_i_init,
            w_h_init,
            b_init,
            rng_key=rng_key,
            name=name,
        )


class Conv2DLSTM(ConvNDLSTM):
    """2-d convolutional LSTM: :class:`ConvNDLSTM` with ``num_spatial_dims=2``.

    Args:
      input_shape: one example's shape ``(H, W, C)``.
      output_channels: channels ``O`` of the states and output.
      kernel_shape: ``(kh, kw)``, or an int for both.
      forget_gate_bias: added to the forget gate (default 1.0, as Haiku).
      w_i_init: initializer for ``input_to_hidden.weight`` ``[kh, kw, C, 4 O]``.
      w_h_init: initializer for ``hidden_to_hidden.weight`` ``[kh, kw, O, 4 O]``.
      b_init: initializer for both biases ``[4 O]`` (default zeros).
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Shapes: input ``[B, H, W, C]``, state ``LSTMState`` of two
    ``[B, H, W, O]``, output ``[B, H, W, O]``; the batch axis is optional.

    >>> import jax, jax.numpy as jnp, pax
    >>> core = pax.Conv2DLSTM((6, 6, 3), 3, 3, rng_key=jax.random.PRNGKey(0))
    >>> core
    Conv2DLSTM(input_shape=(6, 6, 3), output_channels=3, kernel_shape=3,
      forget_gate_bias=1.0)
    >>> core(core.initial_state(2), jnp.ones((2, 6, 6, 3)))[1].shape
    (2, 6, 6, 3)
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        output_channels: int,
        kernel_shape: int | Sequence[int],
        forget_gate_bias: float = 1.0,
        w_i_init: Initializer | None = None,
        w_h_init: Initializer | None = None,
        b_init: Initializer | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            2,
            input_shape,
            output_channels,
            kernel_shape,
            forget_gate_bias,
            w_i_init,
            w_h_init,
            b_init,
            rng_key=rng_key,
            name=name,
        )


class Conv3DLSTM(ConvNDLSTM):
    """3-d convolutional LSTM: :class:`ConvNDLSTM` with ``num_spatial_dims=3``.

    Args:
      input_shape: one example's shape ``(D, H, W, C)``.
      output_channels: channels ``O`` of the states and output.
      kernel_shape: ``(kd, kh, kw)``, or an int for all three.
      forget_gate_bias: added to the forget gate (default 1.0, as Haiku).
      w_i_init: initializer for ``input_to_hidden.weight``
        ``[kd, kh, kw, C, 4 O]``.
      w_h_init: initializer for ``hidden_to_hidden.weight``
        ``[kd, kh, kw, O, 4 O]``.
      b_init: initializer for both biases ``[4 O]`` (default zeros).
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Shapes: input ``[B, D, H, W, C]``, state ``LSTMState`` of two
    ``[B, D, H, W, O]``, output ``[B, D, H, W, O]``; the batch axis is
    optional.

    >>> import jax, jax.numpy as jnp, pax
    >>> core = pax.Conv3DLSTM((4, 4, 4, 2), 2, 2, rng_key=jax.random.PRNGKey(0))
    >>> core(core.initial_state(None), jnp.ones((4, 4, 4, 2)))[1].shape
    (4, 4, 4, 2)
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        output_channels: int,
        kernel_shape: int | Sequence[int],
        forget_gate_bias: float = 1.0,
        w_i_init: Initializer | None = None,
        w_h_init: Initializer | None = None,
        b_init: Initializer | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            3,
            input_shape,
            output_channels,
            kernel_shape,
            forget_gate_bias,
            w_i_init,
            w_h_init,
            b_init,
            rng_key=rng_key,
            name=name,
        )
