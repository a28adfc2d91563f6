"""Haiku's recurrent cores and unrolls, computing with ``pax.nn``'s cores.

Haiku's calling convention: ``core(inputs, prev_state) -> (outputs,
next_state)`` and ``core.initial_state(batch_size)``. Parameters are created
with ``get_parameter`` under Haiku's names (``lstm/linear/w``,
``vanilla_rnn/linear_1/w``, ``gru/w_i``) in Haiku's order, then the matching
``pax.nn`` core (``core(state, x) -> (state, y)``) is built around them with
``native`` and called. ``ResetCore``, ``DeepRNN`` (with or without skip
connections) and the unrolls are ``pax.nn``'s, run on Haiku's cores through
one adapter (``_PaxOrder``) that swaps the calling convention; what stays
here is Haiku's argument and return order, its naming and its checks.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import nn
from . import initializers
from ._base import inside_transform
from ._conv import ConvND, default_w_init
from ._linear import Linear
from ._mapping import Context, fetch, record_for
from ._module import Module
from ._native import Template, template
from ._stateful import scan as _hk_scan

LSTMState = nn.LSTMState


class RNNCore(abc.ABC, Module):
    """Base class of Haiku's recurrent cores: subclasses implement
    ``__call__(inputs, prev_state) -> (outputs, next_state)`` and
    ``initial_state(batch_size)``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> class Counter(hk.RNNCore):
    ...     def __call__(self, inputs, prev_state):
    ...         return inputs, prev_state + 1
    ...     def initial_state(self, batch_size):
    ...         return jnp.zeros([batch_size])
    >>> f = hk.transform(lambda x: Counter()(x, jnp.zeros([2])))
    >>> f.apply({}, None, jnp.ones((2, 3)))[1]
    Array([1., 1.], dtype=float32)
    """

    @abc.abstractmethod
    def __call__(self, inputs, prev_state) -> tuple[Any, Any]:
        """One step: ``(inputs, prev_state) -> (outputs, next_state)``."""

    @abc.abstractmethod
    def initial_state(self, batch_size: int | None):
        """The state before the first step (no batch axis for ``None``)."""


def _add_batch(nest: Any, batch_size: int | None) -> Any:
    """Broadcast every leaf to ``[batch_size, *shape]`` (unchanged for None)."""
    if batch_size is None:
        return nest
    return jax.tree_util.tree_map(
        lambda x: jnp.broadcast_to(x, (batch_size,) + x.shape), nest
    )


class _LinearParams(Linear):
    """``hk.Linear``'s parameters (same names, initializers and order of
    creation), fetched without running the layer: the core that owns them
    computes with a ``pax.nn`` module instead."""

    def params(self, spec: Template, dtype: Any, prefix: str) -> dict:
        """The arrays at ``prefix`` of the core's native ``spec``."""
        input_size = self.input_size = spec.shapes[prefix + ".weight"][0]
        w_init = self.w_init
        if w_init is None:
            w_init = initializers.TruncatedNormal(stddev=1.0 / np.sqrt(input_size))
        inits = {"w": w_init, "b": self.b_init}
        twin = record_for(nn.Linear)
        return fetch(twin, Context(), spec.shapes, dtype, inits, prefix=prefix)


def _compute_dtype(*arrays: jax.Array) -> Any:
    """Haiku's cores mix their input and state with jnp's promotion rules."""
    return jnp.result_type(*arrays)


class VanillaRNN(RNNCore):
    """Haiku's ``VanillaRNN``: ``h' = relu(x w_i + b_i + h w_h + b_h)``; the
    output is the new state. Parameters ``vanilla_rnn/linear`` (``w``
    ``[I, H]``, ``b`` ``[H]``, input dtype) and ``vanilla_rnn/linear_1`` (``w``
    ``[H, H]``, ``b`` only with ``double_bias``, state dtype).

    Shapes: inputs ``[B, I]``, state ``[B, H]``, outputs ``[B, H]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     core = hk.VanillaRNN(4)
    ...     return core(x, core.initial_state(2))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 3)))
    >>> sorted(params)
    ['vanilla_rnn/linear', 'vanilla_rnn/linear_1']
    >>> f.apply(params, None, jnp.ones((2, 3)))[0].shape
    (2, 4)
    """

    def __init__(
        self, hidden_size: int, double_bias: bool = True, name: str | None = None
    ):
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self.double_bias = double_bias

    def __call__(self, inputs, prev_state):
        inputs = jnp.asarray(inputs)
        prev_state = jnp.asarray(prev_state)
        hidden = self.hidden_size
        input_to_hidden = _LinearParams(hidden, name="linear")
        hidden_to_hidden = _LinearParams(
            hidden, with_bias=self.double_bias, name="linear"
        )
        spec = template(
            nn.VanillaRNN,
            inputs.shape[-1],
            hidden,
            double_bias=bool(self.double_bias),
        )
        arrays = input_to_hidden.params(spec, inputs.dtype, ".input_to_hidden")
        arrays.update(
            hidden_to_hidden.params(spec, prev_state.dtype, ".hidden_to_hidden")
        )
        core = spec.build(arrays)
        dtype = _compute_dtype(inputs, prev_state)
        state, out = core(prev_state.astype(dtype), inputs.astype(dtype))
        return out, state

    def initial_state(self, batch_size: int | None):
        return _add_batch(jnp.zeros([self.hidden_size]), batch_size)


class LSTM(RNNCore):
    """Haiku's ``LSTM``: one ``linear`` over ``[x, h]`` (``lstm/linear``, ``w``
    ``[I + H, 4 H]``, ``b`` ``[4 H]``), gates i, g, f, o and +1 on the forget
    gate; returns ``(h, LSTMState(hidden=h, cell=c))``.

    Shapes: inputs ``[B, I]`` or ``[I]``, state ``LSTMState([B, H], [B, H])``,
    outputs ``[B, H]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     core = hk.LSTM(4)
    ...     return core(x, core.initial_state(2))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 3)))
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'lstm/linear': {'b': (16,), 'w': (7, 16)}}
    >>> out, state = f.apply(params, None, jnp.ones((2, 3)))
    >>> out.shape, state.cell.shape
    ((2, 4), (2, 4))
    """

    def __init__(self, hidden_size: int, name: str | None = None):
        super().__init__(name=name)
        self.hidden_size = hidden_size

    def __call__(self, inputs, prev_state):
        inputs = jnp.asarray(inputs)
        prev_state = jax.tree_util.tree_map(jnp.asarray, prev_state)
        if len(inputs.shape) > 2 or not inputs.shape:
            raise ValueError("LSTM input must be rank-1 or rank-2.")
        hidden, cell = prev_state
        # Haiku's linear sees concatenate([x, h]): its dtype is the promotion.
        dtype = _compute_dtype(inputs, hidden)
        input_size = inputs.shape[-1]
        size = self.hidden_size
        spec = template(nn.LSTM, input_size, size, forget_gate_bias=1.0)
        arrays = _LinearParams(4 * size, name="linear").params(spec, dtype, ".linear")
        core = spec.build(arrays)
        state = LSTMState(hidden.astype(dtype), cell.astype(dtype))
        state, h = core(state, inputs.astype(dtype))
        return h, state

    def initial_state(self, batch_size: int | None) -> LSTMState:
        zeros = jnp.zeros([self.hidden_size])
        return _add_batch(LSTMState(hidden=zeros, cell=zeros), batch_size)


class _ConvParams(ConvND):
    """``hk.ConvND``'s parameters (``SAME``, stride 1, channels last: the
    configuration Haiku's ConvLSTMs use), fetched without running the layer."""

    def params(self, spec: Template, dtype: Any, prefix: str) -> dict:
        """The arrays at ``prefix`` of the core's native ``spec``."""
        w_shape = spec.shapes[prefix + ".weight"]
        w_init = self.w_init
        if w_init is None:
            w_init = default_w_init(int(np.prod(w_shape[:-1])))
        ctx = Context(
            channels_last=self.channel_index == -1, spatial_dims=self.num_spatial_dims
        )
        inits = {"w": w_init, "b": self.b_init}
        twin = record_for(nn.ConvND)
        return fetch(twin, ctx, spec.shapes, dtype, inits, prefix=prefix)


class ConvNDLSTM(RNNCore):
    """Haiku's ``ConvNDLSTM``: an LSTM whose projections are ``SAME``
    convolutions ``input_to_hidden`` and ``hidden_to_hidden`` (each ``w``
    ``[*kernel_shape, C_in, 4 O]``, ``b`` ``[4 O]``), gates i, g, f, o and +1
    on the forget gate. ``input_shape`` is the spatial shape (no batch, no
    channels); it sets ``initial_state``'s shape.

    Shapes: inputs ``[B, *input_shape, C]``, state ``LSTMState`` of two
    ``[B, *input_shape, O]``, outputs ``[B, *input_shape, O]``. Not exported
    (as in Haiku): use :class:`Conv1DLSTM`, :class:`Conv2DLSTM` or
    :class:`Conv3DLSTM`.
    """

    def __init__(
        self,
        num_spatial_dims: int,
        input_shape: Sequence[int],
        output_channels: int,
        kernel_shape: int | Sequence[int],
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.num_spatial_dims = num_spatial_dims
        self.input_shape = tuple(input_shape)
        self.output_channels = output_channels
        self.kernel_shape = kernel_shape

    def __call__(self, inputs, state):
        inputs = jnp.asarray(inputs)
        state = jax.tree_util.tree_map(jnp.asarray, state)
        hidden, cell = state
        n, out = self.num_spatial_dims, 4 * self.output_channels
        input_to_hidden = _ConvParams(n, out, self.kernel_shape, name="input_to_hidden")
        hidden_to_hidden = _ConvParams(
            n, out, self.kernel_shape, name="hidden_to_hidden"
        )
        if inputs.ndim not in (n + 1, n + 2):
            raise ValueError(
                f"Input to ConvND needs to have rank in {[n + 1, n + 2]}, but "
                f"input has shape {inputs.shape}."
            )
        example_shape = inputs.shape[inputs.ndim - n - 1 :]
        spec = template(
            nn.ConvNDLSTM,
            n,
            tuple(example_shape),
            self.output_channels,
            input_to_hidden.kernel_shape,
        )
        arrays = input_to_hidden.params(spec, inputs.dtype, ".input_to_hidden")
        arrays.update(hidden_to_hidden.params(spec, hidden.dtype, ".hidden_to_hidden"))
        core = spec.build(arrays)
        dtype = _compute_dtype(inputs, hidden)
        state = LSTMState(hidden.astype(dtype), cell.astype(dtype))
        state, h = core(state, inputs.astype(dtype))
        return h, state

    def initial_state(self, batch_size: int | None) -> LSTMState:
        shape = self.input_shape + (self.output_channels,)
        return _add_batch(LSTMState(jnp.zeros(shape), jnp.zeros(shape)), batch_size)


def _conv_lstm(n: int) -> type:
    class ConvLSTM(ConvNDLSTM):
        def __init__(
            self,
            input_shape: Sequence[int],
            output_channels: int,
            kernel_shape: int | Sequence[int],
            name: str | None = None,
        ):
            super().__init__(
                num_spatial_dims=n,
                input_shape=input_shape,
                output_channels=output_channels,
                kernel_shape=kernel_shape,
                name=name,
            )

    ConvLSTM.__name__ = ConvLSTM.__qualname__ = f"Conv{n}DLSTM"
    return ConvLSTM


class Conv1DLSTM(_conv_lstm(1)):
    """Haiku's ``Conv1DLSTM``: :class:`ConvNDLSTM` with one spatial axis.

    Shapes: inputs ``[B, W, C]``, state and outputs ``[B, W, O]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     core = hk.Conv1DLSTM([5], 2, 3)
    ...     return core(x, core.initial_state(1))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 5, 3)))
    >>> sorted(params)
    ['conv1_dlstm/hidden_to_hidden', 'conv1_dlstm/input_to_hidden']
    """


class Conv2DLSTM(_conv_lstm(2)):
    """Haiku's ``Conv2DLSTM``: :class:`ConvNDLSTM` with two spatial axes.

    Shapes: inputs ``[B, H, W, C]``, state and outputs ``[B, H, W, O]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     core = hk.Conv2DLSTM([4, 4], 2, 3)
    ...     return core(x, core.initial_state(1))
    >>> f = hk.transform(f)
    >>> x = jnp.ones((1, 4, 4, 3))
    >>> params = jax.eval_shape(f.init, jax.random.PRNGKey(0), x)
    >>> jax.eval_shape(f.apply, params, None, x)[0].shape
    (1, 4, 4, 2)
    """


class Conv3DLSTM(_conv_lstm(3)):
    """Haiku's ``Conv3DLSTM``: :class:`ConvNDLSTM` with three spatial axes.

    Shapes: inputs ``[B, D, H, W, C]``, state and outputs ``[B, D, H, W, O]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> core = hk.transform(lambda: hk.Conv3DLSTM([2, 2, 2], 2, 1).initial_state(1))
    >>> core.apply({}, None).cell.shape
    (1, 2, 2, 2, 2)
    """


class GRU(RNNCore):
    """Haiku's ``GRU``: parameters ``w_i`` ``[I, 3 H]``, ``w_h`` ``[H, 3 H]``
    (default ``VarianceScaling()``) and ``b`` ``[3 H]`` (zeros), in the input's
    dtype; gates z, r then the candidate a; the output is the new state.

    Shapes: inputs ``[B, I]`` or ``[I]``, state ``[B, H]``, outputs ``[B, H]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     core = hk.GRU(4)
    ...     return core(x, core.initial_state(2))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 3)))
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'gru': {'b': (12,), 'w_h': (4, 12), 'w_i': (3, 12)}}
    """

    def __init__(
        self,
        hidden_size: int,
        w_i_init=None,
        w_h_init=None,
        b_init=None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self.w_i_init = w_i_init or initializers.VarianceScaling()
        self.w_h_init = w_h_init or initializers.VarianceScaling()
        self.b_init = b_init or jnp.zeros

    def __call__(self, inputs, state):
        inputs = jnp.asarray(inputs)
        state = jnp.asarray(state)
        if inputs.ndim not in (1, 2):
            raise ValueError("GRU input must be rank-1 or rank-2.")
        input_size = inputs.shape[-1]
        size = self.hidden_size
        dtype = inputs.dtype
        spec = template(nn.GRU, input_size, size)
        inits = {"w_i": self.w_i_init, "w_h": self.w_h_init, "b": self.b_init}
        core = spec.build(
            fetch(record_for(nn.GRU), Context(), spec.shapes, dtype, inits)
        )
        compute = _compute_dtype(inputs, state)
        next_state, out = core(state.astype(compute), inputs.astype(compute))
        return out, next_state

    def initial_state(self, batch_size: int | None):
        return _add_batch(jnp.zeros([self.hidden_size]), batch_size)


class IdentityCore(RNNCore):
    """Haiku's ``IdentityCore``: returns its inputs and an empty state ``()``.

    Shapes: inputs any pytree, state ``()``, outputs the inputs.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.IdentityCore()(x, ()))
    >>> f.apply({}, None, jnp.ones(2))
    (Array([1., 1.], dtype=float32), ())
    """

    def __call__(self, inputs, state):
        return inputs, state

    def initial_state(self, batch_size: int | None):
        return ()


class _PaxOrder(nn.RNNCore):
    """A Haiku core (or any ``f(inputs, state) -> (outputs, state)``) seen
    through ``pax.nn``'s convention ``core(state, x) -> (state, output)``, so
    that ``pax.nn``'s ResetCore, DeepRNN and unrolls run it: the only
    adapter between the two calling conventions."""

    def __init__(self, core: Any):
        super().__init__()
        self.core = core

    def initial_state(self, batch_size: int | None, *, dtype: Any = None):
        # Haiku's cores take no dtype; pax.nn passes None (keep the dtypes).
        return self.core.initial_state(batch_size)

    def __call__(self, state: Any, x: Any) -> tuple[Any, Any]:
        outputs, state = self.core(x, state)
        return state, outputs


class ResetCore(RNNCore):
    """Haiku's ``ResetCore``: takes ``(inputs, should_reset)`` and runs the
    wrapped core from its initial state wherever ``should_reset`` is true
    (:class:`pax.nn.ResetCore` does the masking).

    Shapes: ``should_reset`` ``[B]`` (a prefix of every state leaf's shape) or
    a pytree like the state; state and outputs are the wrapped core's.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x, reset):
    ...     core = hk.ResetCore(hk.LSTM(4))
    ...     return core((x, reset), core.initial_state(2))
    >>> f = hk.transform(f)
    >>> x, reset = jnp.ones((2, 3)), jnp.array([True, False])
    >>> params = f.init(jax.random.PRNGKey(0), x, reset)
    >>> f.apply(params, None, x, reset)[0].shape
    (2, 4)
    """

    def __init__(self, core: RNNCore, name: str | None = None):
        super().__init__(name=name)
        self.core = core

    def __call__(self, inputs, state):
        inputs, should_reset = inputs
        # Haiku hands the wrapped core its inputs as arrays.
        inputs = jax.tree_util.tree_map(jnp.asarray, inputs)
        reset = nn.ResetCore(_PaxOrder(self.core))
        state, outputs = reset(state, (inputs, should_reset))
        return outputs, state

    def initial_state(self, batch_size: int | None):
        return self.core.initial_state(batch_size)


class _DeepRNN(RNNCore):
    """Haiku's deep RNN (with or without skip connections) on
    :class:`pax.nn.DeepRNN`: Haiku's cores go in through the calling-convention
    adapter, every other layer as a plain function."""

    def __init__(
        self,
        layers: Sequence[Any],
        skip_connections: bool,
        concat_final_output: bool = True,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.layers = layers
        self.skip_connections = skip_connections
        self.concat_final_output = concat_final_output
        # Haiku checks at construction, with its own message (pax.nn checks
        # for an `initial_state` method, Haiku for the RNNCore class).
        if skip_connections:
            for layer in layers:
                if not isinstance(layer, RNNCore):
                    raise ValueError(
                        "skip_connections requires for all layers to be "
                        f"`hk.RNNCore`s. Layers is: {layers}"
                    )

    def _native(self) -> nn.DeepRNN:
        # Haiku's test is isinstance(RNNCore): anything else (a pax module
        # with `initial_state` included) is called as a function.
        layers = [
            _PaxOrder(layer) if isinstance(layer, RNNCore) else nn.Lambda(layer)
            for layer in self.layers
        ]
        return nn.DeepRNN(
            layers,
            skip_connections=self.skip_connections,
            concat_final_output=self.concat_final_output,
        )

    def __call__(self, inputs, state):
        if not self.layers:  # Haiku allows no layers; pax.nn.DeepRNN does not
            return inputs, ()
        state, outputs = self._native()(state, inputs)
        return outputs, state

    def initial_state(self, batch_size: int | None):
        if not self.layers:
            return ()
        return self._native().initial_state(batch_size, dtype=None)


class DeepRNN(_DeepRNN):
    """Haiku's ``DeepRNN``: runs ``layers`` (cores and plain functions such as
    ``jax.nn.relu``) in order as one core; the state is a tuple with one entry
    per core.

    Shapes: inputs what the first layer takes; outputs what the last returns.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     core = hk.DeepRNN([hk.LSTM(4), jax.nn.relu, hk.GRU(2)])
    ...     return core(x, core.initial_state(2))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 3)))
    >>> sorted(params)
    ['gru', 'lstm/linear']
    """

    def __init__(self, layers: Sequence[Any], name: str | None = None):
        super().__init__(layers, skip_connections=False, name=name)


def deep_rnn_with_skip_connections(
    layers: Sequence[RNNCore],
    name: str | None = None,
    *,
    concat_final_output: bool = True,
) -> RNNCore:
    """Haiku's deep RNN with skip connections: core ``k > 0`` reads
    ``concatenate([inputs, out_{k-1}], -1)``; the output concatenates every
    core's output (only the last core's with ``concat_final_output=False``).

    Shapes: inputs ``[B, I]``; outputs ``[B, H_0 + ... + H_last]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     core = hk.deep_rnn_with_skip_connections([hk.LSTM(4), hk.GRU(2)])
    ...     return core(x, core.initial_state(2))
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 3)))
    >>> f.apply(params, None, jnp.ones((2, 3)))[0].shape
    (2, 6)
    """
    return _DeepRNN(
        layers,
        skip_connections=True,
        concat_final_output=concat_final_output,
        name=name,
    )


def _unroll(pax_unroll, core, input_sequence, initial_state, time_major, **kwargs):
    """A ``pax.nn`` unroll of a Haiku core, in Haiku's order ``(outputs,
    state)``; as in Haiku the state may change dtype between steps."""
    state, outputs = pax_unroll(
        _PaxOrder(core),
        input_sequence,
        initial_state,
        time_major=time_major,
        keep_state_dtype=False,
        **kwargs,
    )
    return outputs, state


def static_unroll(core, input_sequence, initial_state, time_major=True):
    """Haiku's ``static_unroll``: calls ``core`` once per time step in a Python
    loop (:func:`pax.nn.static_unroll`); returns ``(output_sequence,
    final_state)``. As in Haiku the state may change dtype between steps, and
    a sequence with no time step is an error.

    Shapes: ``input_sequence`` leaves ``[T, B, ...]`` (``[B, T, ...]`` when
    not ``time_major``); outputs stacked the same way.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(xs):
    ...     core = hk.GRU(4)
    ...     return hk.static_unroll(core, xs, core.initial_state(2))
    >>> f = hk.transform(f)
    >>> xs = jnp.ones((5, 2, 3))
    >>> outs, state = f.apply(f.init(jax.random.PRNGKey(0), xs), None, xs)
    >>> outs.shape, state.shape
    ((5, 2, 4), (2, 4))
    """
    return _unroll(nn.static_unroll, core, input_sequence, initial_state, time_major)


def dynamic_unroll(
    core,
    input_sequence,
    initial_state,
    time_major=True,
    reverse=False,
    return_all_states=False,
    unroll=1,
):
    """Haiku's ``dynamic_unroll``: :func:`pax.nn.dynamic_unroll` looping with
    ``hk.scan`` (``jax.lax.scan`` outside a transform), so parameters are
    created at ``init`` and Haiku's state and rng thread through the steps;
    returns ``(output_sequence, final_state)`` (every state, stacked like the
    outputs, with ``return_all_states``).

    Shapes: ``input_sequence`` leaves ``[T, B, ...]`` (``[B, T, ...]`` when
    not ``time_major``); outputs stacked the same way.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(xs):
    ...     core = hk.LSTM(4)
    ...     return hk.dynamic_unroll(core, xs, core.initial_state(2))
    >>> f = hk.transform(f)
    >>> xs = jnp.ones((5, 2, 3))
    >>> outs, state = f.apply(f.init(jax.random.PRNGKey(0), xs), None, xs)
    >>> outs.shape, state.hidden.shape
    ((5, 2, 4), (2, 4))
    """
    return _unroll(
        nn.dynamic_unroll,
        core,
        input_sequence,
        initial_state,
        time_major,
        reverse=reverse,
        return_all_states=return_all_states,
        unroll=unroll,
        scan=_hk_scan if inside_transform() else jax.lax.scan,
    )
