"""Recurrent cores and unrolls: ``VanillaRNN``, ``LSTM``, ``GRU``, ``DeepRNN``,
``ResetCore``, ``IdentityCore``, ``dynamic_unroll``, ``static_unroll``.

The math and parameter layout are Haiku's; the calling convention is PAX's:
a core is called ``core(state, x) -> (new_state, output)`` and builds its
first state with ``core.initial_state(batch_size)``. Cores hold parameters
only: the state is passed in and returned, so a call needs no ``pax.pure``.

dtypes: parameters are stored in float32; a call computes in the input's
floating dtype (integer input gives float32 output: it computes in float32),
returns its output in that dtype and returns the new state in the dtype of
the state it was given (so the carry of ``jax.lax.scan`` keeps
its type). ``initial_state(batch_size, dtype=...)`` builds a state of any
dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core.module import Module, parameters_method
from ..initializers import Initializer, VarianceScaling, zeros
from ._containers import Lambda, _function_name
from ._linear import Linear
from ._utils import as_array, compute_dtype, positive_int, rng_key_or_next, who

__all__ = [
    "LSTMState",
    "RNNCore",
    "VanillaRNN",
    "LSTM",
    "GRU",
    "DeepRNN",
    "deep_rnn_with_skip_connections",
    "ResetCore",
    "IdentityCore",
    "dynamic_unroll",
    "static_unroll",
]


class LSTMState(NamedTuple):
    """The state of an LSTM: ``hidden`` (the last output) and ``cell``.

    Both are ``[B, hidden_dim]`` for :class:`LSTM` (``[hidden_dim]``
    unbatched) and ``[B, *spatial, output_channels]`` for the convolutional
    LSTMs. A pytree (a named tuple), so it passes through ``jax.jit`` and
    ``jax.lax.scan``.

    >>> import jax, jax.numpy as jnp, pax
    >>> state = pax.LSTMState(hidden=jnp.zeros((2, 4)), cell=jnp.ones((2, 4)))
    >>> state.cell.shape, len(jax.tree_util.tree_leaves(state))
    ((2, 4), 2)
    """

    hidden: jax.Array
    cell: jax.Array


# ---------------------------------------------------------------------------
# helpers shared by the cores (and by _conv_lstm.py)
# ---------------------------------------------------------------------------


def is_core(layer: Any) -> bool:
    """True for a module that has an ``initial_state`` method (an RNN core)."""
    return isinstance(layer, Module) and callable(getattr(layer, "initial_state", None))


def check_batch_size(batch_size: Any, owner: str) -> int | None:
    """``None`` or a non-negative int."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(
            f"{owner}.initial_state: `batch_size` must be an int or None, "
            f"got {batch_size!r}"
        )
    if batch_size < 0:
        raise ValueError(
            f"{owner}.initial_state: `batch_size` must be >= 0, got {batch_size}"
        )
    return int(batch_size)


def zeros_state(
    batch_size: int | None, feature_shape: tuple, dtype: Any, owner: str
) -> jax.Array:
    """Zeros of shape ``[batch_size, *feature_shape]`` (no batch axis for None)."""
    b = check_batch_size(batch_size, owner)
    return jnp.zeros(feature_shape if b is None else (b, *feature_shape), dtype)


def cast_state(state: Any, dtype: Any) -> Any:
    """Cast the floating leaves of ``state`` to ``dtype`` (``None``: keep)."""
    if dtype is None:
        return state

    def cast(s):
        s = jnp.asarray(s)
        return s.astype(dtype) if jnp.issubdtype(s.dtype, jnp.floating) else s

    return jax.tree_util.tree_map(cast, state)


def initial_state_of(core: Module, batch_size: int | None, dtype: Any) -> Any:
    """``core.initial_state(batch_size)`` with floating leaves cast to ``dtype``
    (works for user cores whose ``initial_state`` takes no ``dtype``)."""
    return cast_state(core.initial_state(batch_size), dtype)


def check_input(module: Module, x: Any, feature_shape: tuple) -> jax.Array:
    """``x`` as an array whose trailing axes are ``feature_shape``."""
    x = as_array(x, who(module))
    n = len(feature_shape)
    if x.ndim < n or tuple(x.shape[x.ndim - n :]) != feature_shape:
        if n == 1:
            want = f"with last dimension {feature_shape[0]}"
        else:
            want = f"of shape [batch, {', '.join(map(str, feature_shape))}]"
        raise ValueError(
            f"{who(module)}: expected input {want}, got shape {tuple(x.shape)}"
        )
    return x


def check_state(
    module: Module, what: str, s: Any, x: jax.Array, feature_shape: tuple, n: int
) -> jax.Array:
    """``s`` as an array of shape ``x.shape[:-n] + feature_shape``: the batch
    axes of the input (all but its last ``n``) followed by ``feature_shape``."""
    s = as_array(s, who(module))
    batch = tuple(x.shape[: x.ndim - n])
    expected = (*batch, *feature_shape)
    if tuple(s.shape) == expected:
        return s
    k = len(feature_shape)
    if s.ndim >= k and tuple(s.shape[s.ndim - k :]) == feature_shape:
        raise ValueError(
            f"{who(module)}: the state's batch shape {tuple(s.shape[: s.ndim - k])} "
            f"(`{what}` of shape {tuple(s.shape)}) differs from the input's batch "
            f"shape {batch} (input of shape {tuple(x.shape)}); build the state "
            "with `initial_state(batch_size)` for the input's batch size"
        )
    raise ValueError(
        f"{who(module)}: expected state `{what}` of shape {expected}, "
        f"got shape {tuple(s.shape)}"
    )


def unpack_lstm_state(module: Module, state: Any) -> tuple[Any, Any]:
    """``(hidden, cell)`` from an :class:`LSTMState` (or a pair of arrays)."""
    try:
        if not isinstance(state, (tuple, list)):
            raise TypeError
        hidden, cell = state
    except (TypeError, ValueError):
        raise TypeError(
            f"{who(module)}: expected the state as LSTMState(hidden, cell), "
            f"got {type(state).__name__}"
        ) from None
    return hidden, cell


def state_dtype(s: jax.Array, compute: Any) -> Any:
    """The dtype a new state is returned in: the old state's if floating."""
    return s.dtype if jnp.issubdtype(s.dtype, jnp.floating) else compute


def lstm_update(
    gates: jax.Array, cell: jax.Array, forget_gate_bias: float
) -> tuple[jax.Array, jax.Array]:
    """Haiku's LSTM update from fused pre-activations (gate order i, g, f, o):
    returns ``(hidden, cell)``."""
    i, g, f, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f + forget_gate_bias) * cell + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, c


# ---------------------------------------------------------------------------
# cores
# ---------------------------------------------------------------------------


class RNNCore(Module):
    """Base class of the recurrent cores (subclassing it is optional).

    A core is a module with two methods:

    * ``initial_state(batch_size, *, dtype=jnp.float32)``: the state before the
      first step, with a leading batch axis of size ``batch_size`` on every
      leaf (no batch axis for ``batch_size=None``);
    * ``__call__(state, x) -> (new_state, output)``: one time step.
      ``new_state`` has the structure, shapes and dtypes of ``state``.

    :class:`DeepRNN` and :class:`ResetCore` treat any module with an
    ``initial_state`` method as a core; the unrolls take any function
    ``(state, x) -> (new_state, output)``.

    >>> import jax.numpy as jnp, pax
    >>> class Counter(RNNCore):          # state [B]; input and output [B, 1]
    ...     def initial_state(self, batch_size, *, dtype=jnp.float32):
    ...         return jnp.zeros((batch_size,), dtype)
    ...     def __call__(self, state, x):
    ...         return state + 1, x * state[:, None]
    >>> core = Counter()
    >>> xs = jnp.ones((3, 2, 1))
    >>> state, ys = pax.nn.dynamic_unroll(core, xs, core.initial_state(2))
    >>> state, ys[:, 0, 0]
    (Array([3., 3.], dtype=float32), Array([0., 1., 2.], dtype=float32))
    """

    def initial_state(self, batch_size: int | None, *, dtype: Any = jnp.float32):
        """The state before the first step (see the class docstring)."""
        raise NotImplementedError(f"{type(self).__name__} must define initial_state")

    def __call__(self, state: Any, x: Any) -> tuple[Any, Any]:
        """One step: ``(state, x) -> (new_state, output)``."""
        raise NotImplementedError(f"{type(self).__name__} must define __call__")


class VanillaRNN(RNNCore):
    """A fully connected RNN: ``h' = relu(W_i x + b_i + W_h h + b_h)``.

    Args:
      input_dim: size of the input's last axis ``I``.
      hidden_dim: size of the hidden state ``H``.
      double_bias: give ``hidden_to_hidden`` a bias too (default True, as
        Haiku). It adds a second, redundant bias vector; with False only
        ``input_to_hidden`` has one.
      w_i_init: initializer for ``input_to_hidden.weight`` ``[I, H]``. Default
        (Haiku's): ``TruncatedNormal(stddev=1 / sqrt(I))``.
      w_h_init: initializer for ``hidden_to_hidden.weight`` ``[H, H]``. Default:
        ``TruncatedNormal(stddev=1 / sqrt(H))``.
      b_init: initializer for the biases ``[H]``. Default: zeros.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Submodules ``input_to_hidden = Linear(I, H)`` and ``hidden_to_hidden =
    Linear(H, H, with_bias=double_bias)`` (Haiku's ``vanilla_rnn/linear`` and
    ``vanilla_rnn/linear_1``).

    Shapes: input ``x`` ``[B, I]``, state ``[B, H]``, output ``[B, H]`` (equal
    to the new state); ``[I]`` and ``[H]`` without a batch axis. Any leading
    batch axes work, as long as the state has the same ones.

    >>> import jax, jax.numpy as jnp, pax
    >>> rnn = pax.VanillaRNN(3, 4, rng_key=jax.random.PRNGKey(0))
    >>> state = rnn.initial_state(2)
    >>> state, y = rnn(state, jnp.ones((2, 3)))
    >>> state.shape, y.shape
    ((2, 4), (2, 4))
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        *,
        double_bias: bool = True,
        w_i_init: Initializer | None = None,
        w_h_init: Initializer | None = None,
        b_init: Initializer | None = None,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.input_dim = positive_int(input_dim, "input_dim", owner)
        self.hidden_dim = positive_int(hidden_dim, "hidden_dim", owner)
        self.double_bias = bool(double_bias)
        i_key, h_key = jax.random.split(rng_key_or_next(rng_key))
        self.input_to_hidden = Linear(
            self.input_dim,
            self.hidden_dim,
            w_init=w_i_init,
            b_init=b_init,
            rng_key=i_key,
        )
        self.hidden_to_hidden = Linear(
            self.hidden_dim,
            self.hidden_dim,
            with_bias=self.double_bias,
            w_init=w_h_init,
            b_init=b_init,
            rng_key=h_key,
        )

    def initial_state(
        self, batch_size: int | None, *, dtype: Any = jnp.float32
    ) -> jax.Array:
        """Zeros ``[batch_size, H]`` (``[H]`` for ``batch_size=None``)."""
        return zeros_state(batch_size, (self.hidden_dim,), dtype, type(self).__name__)

    def __call__(self, state: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``([B, H], [B, I]) -> ([B, H], [B, H])``."""
        x = check_input(self, x, (self.input_dim,))
        h = check_state(self, "state", state, x, (self.hidden_dim,), 1)
        with jax.named_scope("pax.nn.VanillaRNN"):
            dtype = compute_dtype(x, self.input_to_hidden.weight)
            y = jax.nn.relu(
                self.input_to_hidden(x.astype(dtype))
                + self.hidden_to_hidden(h.astype(dtype))
            ).astype(dtype)
            return y.astype(state_dtype(h, dtype)), y


class LSTM(RNNCore):
    """Long short-term memory, Haiku's equations with a configurable forget bias.

    With ``[i, g, f, o] = linear([x, h])`` (the fused projection, split in that
    order)::

        c' = sigmoid(f + forget_gate_bias) * c + sigmoid(i) * tanh(g)
        h' = sigmoid(o) * tanh(c')

    Args:
      input_dim: size of the input's last axis ``I``.
      hidden_dim: size of the hidden and cell states ``H``.
      w_init: initializer for ``linear.weight`` ``[I + H, 4 H]``. Default
        (Haiku's): ``TruncatedNormal(stddev=1 / sqrt(I + H))``. The bias
        ``linear.bias`` ``[4 H]`` starts at zero.
      forget_gate_bias: constant added to the forget gate's pre-activation
        (default 0.0; Haiku's LSTM always adds 1.0, which ``pax.hk.LSTM``
        passes).
      rng_key: key for the initializer; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Submodule ``linear = Linear(I + H, 4 H)`` (Haiku's ``lstm/linear``).

    Shapes: input ``x`` ``[B, I]``, state ``LSTMState(hidden, cell)`` with
    both ``[B, H]``, output ``[B, H]`` (the new hidden state); ``[I]`` and
    ``[H]`` without a batch axis. Any leading batch axes work, as long as the
    state has the same ones.

    >>> import jax, jax.numpy as jnp, pax
    >>> lstm = pax.LSTM(3, 4, rng_key=jax.random.PRNGKey(0))
    >>> lstm
    LSTM(input_dim=3, hidden_dim=4, forget_gate_bias=0.0)
    >>> state, y = lstm(lstm.initial_state(2), jnp.ones((2, 3)))
    >>> state.cell.shape, y.shape
    ((2, 4), (2, 4))
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        w_init: Initializer | None = None,
        forget_gate_bias: float = 0.0,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.input_dim = positive_int(input_dim, "input_dim", owner)
        self.hidden_dim = positive_int(hidden_dim, "hidden_dim", owner)
        self.forget_gate_bias = float(forget_gate_bias)
        self.linear = Linear(
            self.input_dim + self.hidden_dim,
            4 * self.hidden_dim,
            w_init=w_init,
            rng_key=rng_key_or_next(rng_key),
        )

    def initial_state(
        self, batch_size: int | None, *, dtype: Any = jnp.float32
    ) -> LSTMState:
        """Zeros: ``LSTMState`` of two ``[batch_size, H]`` arrays (``[H]`` for
        ``batch_size=None``)."""
        owner = type(self).__name__
        h = zeros_state(batch_size, (self.hidden_dim,), dtype, owner)
        return LSTMState(hidden=h, cell=h)

    def __call__(self, state: LSTMState, x: jax.Array) -> tuple[LSTMState, jax.Array]:
        """``(LSTMState([B, H], [B, H]), [B, I]) -> (LSTMState, [B, H])``."""
        x = check_input(self, x, (self.input_dim,))
        hidden, cell = unpack_lstm_state(self, state)
        feature = (self.hidden_dim,)
        hidden = check_state(self, "hidden", hidden, x, feature, 1)
        cell = check_state(self, "cell", cell, x, feature, 1)
        with jax.named_scope("pax.nn.LSTM"):
            dtype = compute_dtype(x, self.linear.weight)
            xh = jnp.concatenate([x.astype(dtype), hidden.astype(dtype)], axis=-1)
            gates = self.linear(xh).astype(dtype)
            h, c = lstm_update(gates, cell.astype(dtype), self.forget_gate_bias)
            new = LSTMState(
                hidden=h.astype(state_dtype(hidden, dtype)),
                cell=c.astype(state_dtype(cell, dtype)),
            )
            return new, h


class GRU(RNNCore):
    """Gated recurrent unit, Haiku's equations and parameters.

    With ``W_i = [W_iz | W_ir | W_ia]``, ``W_h = [W_hz | W_hr | W_ha]`` and
    ``b = [b_z | b_r | b_a]`` (blocks of ``H`` columns)::

        z  = sigmoid(x W_iz + h W_hz + b_z)
        r  = sigmoid(x W_ir + h W_hr + b_r)
        a  = tanh(x W_ia + (r * h) W_ha + b_a)
        h' = (1 - z) * h + z * a

    Args:
      input_dim: size of the input's last axis ``I``.
      hidden_dim: size of the hidden state ``H``.
      w_i_init: initializer for ``w_i`` ``[I, 3 H]``. Default (Haiku's):
        ``VarianceScaling()`` (scale 1, fan-in, truncated normal).
      w_h_init: initializer for ``w_h`` ``[H, 3 H]``. Default:
        ``VarianceScaling()``.
      b_init: initializer for ``b`` ``[3 H]``. Default: zeros.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Shapes: input ``x`` ``[B, I]``, state ``[B, H]``, output ``[B, H]`` (equal
    to the new state); ``[I]`` and ``[H]`` without a batch axis. Any leading
    batch axes work, as long as the state has the same ones.
    Trainable: ``w_i``, ``w_h``, ``b``.

    >>> import jax, jax.numpy as jnp, pax
    >>> gru = pax.GRU(3, 4, rng_key=jax.random.PRNGKey(0))
    >>> gru.w_i.shape, gru.w_h.shape, gru.b.shape
    ((3, 12), (4, 12), (12,))
    >>> state, y = gru(gru.initial_state(None), jnp.ones((3,)))
    >>> y.shape
    (4,)
    """

    parameters = parameters_method("w_i", "w_h", "b")

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        w_i_init: Initializer | None = None,
        w_h_init: Initializer | None = None,
        b_init: Initializer | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.input_dim = positive_int(input_dim, "input_dim", owner)
        self.hidden_dim = positive_int(hidden_dim, "hidden_dim", owner)
        hd = self.hidden_dim
        i_key, h_key, b_key = jax.random.split(rng_key_or_next(rng_key), 3)
        w_i_init = VarianceScaling() if w_i_init is None else w_i_init
        w_h_init = VarianceScaling() if w_h_init is None else w_h_init
        b_init = zeros if b_init is None else b_init
        self.w_i = w_i_init(i_key, (self.input_dim, 3 * hd), jnp.float32)
        self.w_h = w_h_init(h_key, (hd, 3 * hd), jnp.float32)
        self.b = b_init(b_key, (3 * hd,), jnp.float32)

    def initial_state(
        self, batch_size: int | None, *, dtype: Any = jnp.float32
    ) -> jax.Array:
        """Zeros ``[batch_size, H]`` (``[H]`` for ``batch_size=None``)."""
        return zeros_state(batch_size, (self.hidden_dim,), dtype, type(self).__name__)

    def __call__(self, state: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``([B, H], [B, I]) -> ([B, H], [B, H])``."""
        x = check_input(self, x, (self.input_dim,))
        h = check_state(self, "state", state, x, (self.hidden_dim,), 1)
        hd = self.hidden_dim
        with jax.named_scope("pax.nn.GRU"):
            dtype = compute_dtype(x, self.w_i)
            w_i, w_h, b = (p.astype(dtype) for p in (self.w_i, self.w_h, self.b))
            hc = h.astype(dtype)
            gx = jnp.dot(x.astype(dtype), w_i)
            zr_pre = (
                gx[..., : 2 * hd]
                + jnp.dot(hc, w_h[:, : 2 * hd])
                + jnp.broadcast_to(b[: 2 * hd], gx.shape[:-1] + (2 * hd,))
            )
            z, r = jnp.split(jax.nn.sigmoid(zr_pre), 2, axis=-1)
            a = jnp.tanh(
                gx[..., 2 * hd :]
                + jnp.dot(r * hc, w_h[:, 2 * hd :])
                + jnp.broadcast_to(b[2 * hd :], hc.shape)
            )
            y = (1 - z) * hc + z * a
            return y.astype(state_dtype(h, dtype)), y


class IdentityCore(RNNCore):
    """A core that returns its input as output and keeps an empty state.

    Args:
      name: optional module name.

    Shapes: input any pytree, state ``()``, output the input unchanged. Useful
    to switch a model between recurrent and feed-forward without changing
    the code that unrolls it.

    >>> import jax.numpy as jnp, pax
    >>> core = pax.IdentityCore()
    >>> core(core.initial_state(2), jnp.ones((2, 3)))[1].shape
    (2, 3)
    """

    def __init__(self, *, name: str | None = None):
        super().__init__(name=name)

    def initial_state(self, batch_size: int | None, *, dtype: Any = jnp.float32):
        """The empty state ``()``."""
        check_batch_size(batch_size, type(self).__name__)
        return ()

    def __call__(self, state: Any, x: Any) -> tuple[Any, Any]:
        """``(state, x) -> (state, x)``."""
        return state, x


class ResetCore(RNNCore):
    """Wraps a core so that its state is reset where a flag says so.

    Each step takes ``(x, should_reset)``: where ``should_reset`` is true, the
    wrapped core starts from its initial state (``core.initial_state``, cast
    to the state's dtype) instead of the state it was given, then runs as
    usual. Use it to unroll over a batch of sequences that contain episode
    boundaries at different time steps.

    Args:
      core: the core to wrap (a module with ``initial_state``).
      name: optional module name.

    Shapes: input ``(x, should_reset)`` with ``x`` what ``core`` takes and
    ``should_reset`` a boolean array whose shape is a prefix of every state
    leaf's shape (typically ``[B]``; ``[]`` for an unbatched state), or a
    pytree with the state's structure holding such an array per leaf. State
    and output: those of ``core``.

    >>> import jax, jax.numpy as jnp, pax
    >>> core = pax.ResetCore(pax.LSTM(3, 4, rng_key=jax.random.PRNGKey(0)))
    >>> state = core.initial_state(2)
    >>> state, y = core(state, (jnp.ones((2, 3)), jnp.array([True, False])))
    >>> y.shape
    (2, 4)
    """

    def __init__(self, core: Module, *, name: str | None = None):
        super().__init__(name=name)
        if not is_core(core):
            raise TypeError(
                f"ResetCore: `core` must be a module with an `initial_state` "
                f"method (an RNN core), got {type(core).__name__}"
            )
        self.core = core

    def initial_state(self, batch_size: int | None, *, dtype: Any = jnp.float32):
        """The wrapped core's initial state."""
        return initial_state_of(self.core, batch_size, dtype)

    def __call__(self, state: Any, inputs: tuple[Any, Any]) -> tuple[Any, Any]:
        """``(state, (x, should_reset)) -> (new_state, output)``."""
        try:
            if not isinstance(inputs, (tuple, list)):
                raise TypeError
            x, should_reset = inputs
        except (TypeError, ValueError):
            raise TypeError(
                f"{who(self)}: expected the input as a pair (x, should_reset), "
                f"got {type(inputs).__name__}"
            ) from None
        state_leaves, treedef = jax.tree_util.tree_flatten(state)
        if state_leaves:
            state_leaves = [as_array(s, who(self)) for s in state_leaves]
            resets = self._resets(should_reset, treedef)
            initial = self._initial_leaves(state_leaves)
            state = treedef.unflatten(
                [
                    jnp.where(self._conform(r, s), i.astype(s.dtype), s)
                    for r, i, s in zip(resets, initial, state_leaves)
                ]
            )
        return self.core(state, x)

    def _resets(self, should_reset: Any, treedef: Any) -> list:
        leaves, r_treedef = jax.tree_util.tree_flatten(should_reset)
        if jax.tree_util.treedef_is_leaf(r_treedef) and len(leaves) == 1:
            return leaves * treedef.num_leaves
        if r_treedef != treedef:
            raise ValueError(
                f"{who(self)}: `should_reset` must be one array or a pytree with "
                f"the state's structure {treedef}, got {r_treedef}"
            )
        return leaves

    def _conform(self, r: Any, s: jax.Array) -> jax.Array:
        r = as_array(r, who(self))
        if tuple(r.shape) != tuple(s.shape[: r.ndim]):
            raise ValueError(
                f"{who(self)}: `should_reset` of shape {tuple(r.shape)} is not "
                f"compatible with a state leaf of shape {tuple(s.shape)} (its "
                "shape must be a prefix of the state's, e.g. [batch])"
            )
        r = r.astype(bool).reshape(r.shape + (1,) * (s.ndim - r.ndim))
        return jnp.broadcast_to(r, s.shape)

    def _initial_leaves(self, leaves: list) -> list:
        """The initial state, batched like ``leaves`` (Haiku: same batch)."""
        shapes = [tuple(s.shape) for s in leaves]
        candidates = [None]
        if leaves[0].ndim:
            candidates.insert(0, int(leaves[0].shape[0]))
        for batch_size in candidates:
            init = jax.tree_util.tree_leaves(self.core.initial_state(batch_size))
            if [tuple(jnp.shape(i)) for i in init] == shapes:
                return [jnp.asarray(i) for i in init]
        raise ValueError(
            f"{who(self)}: the state's shapes {shapes} match neither a batched "
            "nor an unbatched initial state of the wrapped core"
        )


class DeepRNN(RNNCore):
    """Stacks cores (and plain functions between them) into one core.

    Each layer feeds the next: a core ``layer`` is called ``layer(state_k, h)``
    with its own entry ``state_k`` of the state tuple, any other layer (a
    module without ``initial_state``, or a function, wrapped in
    :class:`~pax.nn.Lambda`) is called ``layer(h)``.

    With ``skip_connections=True`` (see
    :func:`deep_rnn_with_skip_connections`) every layer must be a core; layer
    ``k > 0`` gets ``concatenate([x, out_{k-1}], axis=-1)``, so its
    ``input_dim`` must be ``I + H_{k-1}``, and the output is the
    concatenation of every core's output (``concat_final_output=True``) or the
    last core's output.

    Args:
      layers: the layers, in order; at least one.
      skip_connections: feed the DeepRNN's input to every core (default False).
      concat_final_output: with skip connections, output the concatenation of
        all cores' outputs (default True) rather than the last one.
      name: optional module name.

    Shapes: input what the first layer takes (e.g. ``[B, I]``); state a tuple
    with one entry per core, in order (``()`` if there are no cores); output
    what the last layer returns (with skip connections and
    ``concat_final_output``: ``[B, H_0 + ... + H_last]``).

    >>> import jax, jax.numpy as jnp, pax
    >>> k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    >>> lstm, gru = pax.LSTM(3, 4, rng_key=k1), pax.GRU(4, 4, rng_key=k2)
    >>> net = pax.DeepRNN([lstm, jax.nn.relu, gru])
    >>> net
    DeepRNN(layers=[LSTM, relu, GRU])
    >>> state, y = net(net.initial_state(2), jnp.ones((2, 3)))
    >>> len(state), y.shape
    (2, (2, 4))
    """

    def __init__(
        self,
        layers: Sequence[Module | Callable[..., Any]],
        *,
        skip_connections: bool = False,
        concat_final_output: bool = True,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        if isinstance(layers, Module) or callable(layers):
            raise TypeError(f"{owner}: `layers` must be a sequence of layers")
        layers = tuple(layers)
        if not layers:
            raise ValueError(f"{owner}: `layers` must hold at least one layer")
        wrapped = []
        for i, layer in enumerate(layers):
            if isinstance(layer, Module):
                wrapped.append(layer)
            elif callable(layer):
                wrapped.append(Lambda(layer))
            else:
                raise TypeError(
                    f"{owner}: layer {i} must be a core, a module or a function, "
                    f"got {type(layer).__name__}"
                )
            if skip_connections and not is_core(wrapped[-1]):
                raise ValueError(
                    f"{owner}: skip connections need every layer to be a core "
                    f"(with `initial_state`); layer {i} is "
                    f"{_layer_name(wrapped[-1])}"
                )
        self.layers = tuple(wrapped)
        self.skip_connections = bool(skip_connections)
        self.concat_final_output = bool(concat_final_output)

    def __repr__(self) -> str:
        names = ", ".join(_layer_name(layer) for layer in self.layers)
        extra = ""
        if self.skip_connections:
            extra = (
                f", skip_connections=True, "
                f"concat_final_output={self.concat_final_output}"
            )
        return f"{type(self).__name__}(layers=[{names}]{extra})"

    @property
    def num_cores(self) -> int:
        """How many layers are cores (the length of the state tuple)."""
        return sum(1 for layer in self.layers if is_core(layer))

    def initial_state(
        self, batch_size: int | None, *, dtype: Any = jnp.float32
    ) -> tuple:
        """A tuple of every core's ``initial_state(batch_size)``, in order."""
        check_batch_size(batch_size, type(self).__name__)
        return tuple(
            initial_state_of(layer, batch_size, dtype)
            for layer in self.layers
            if is_core(layer)
        )

    def __call__(self, state: tuple, x: Any) -> tuple[tuple, Any]:
        """``(tuple of core states, x) -> (tuple of new states, output)``."""
        n = self.num_cores
        if not isinstance(state, (tuple, list)) or len(state) != n:
            got = len(state) if isinstance(state, (tuple, list)) else "not a tuple"
            raise ValueError(
                f"{who(self)}: expected a state tuple with {n} entries (one per "
                f"core), got {got}"
            )
        with jax.named_scope("pax.nn.DeepRNN"):
            h = x
            new_states, outputs = [], []
            for i, layer in enumerate(self.layers):
                if self.skip_connections and i > 0:
                    h = jax.tree_util.tree_map(
                        lambda a, b: None if a is None else _concat(a, b),
                        x,
                        h,
                        is_leaf=lambda v: v is None,
                    )
                if is_core(layer):
                    s, h = layer(state[len(new_states)], h)
                    new_states.append(s)
                    outputs.append(h)
                else:
                    h = layer(h)
            if self.skip_connections and self.concat_final_output:
                h = jax.tree_util.tree_map(lambda *ys: _concat(*ys), *outputs)
            return tuple(new_states), h


def _concat(*arrays: jax.Array) -> jax.Array:
    return jnp.concatenate([jnp.asarray(a) for a in arrays], axis=-1)


def _layer_name(layer: Module) -> str:
    if isinstance(layer, Lambda):
        return _function_name(layer.func)
    return type(layer).__name__


def deep_rnn_with_skip_connections(
    layers: Sequence[Module],
    concat_final_output: bool = True,
    *,
    name: str | None = None,
) -> DeepRNN:
    """A :class:`DeepRNN` whose cores all see the input (Haiku's skip connections).

    Core 0 gets ``x``; core ``k > 0`` gets ``concatenate([x, out_{k-1}],
    axis=-1)``, so build it with ``input_dim = I + H_{k-1}``.

    Args:
      layers: the cores, in order (every layer must be a core).
      concat_final_output: output the concatenation of every core's output
        (default True, Haiku's behaviour) or only the last core's.
      name: optional module name.

    Shapes: input ``[B, I]``; state a tuple of the cores' states; output
    ``[B, H_0 + ... + H_last]`` (or ``[B, H_last]``).

    >>> import jax, jax.numpy as jnp, pax
    >>> k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    >>> net = pax.nn.deep_rnn_with_skip_connections([pax.LSTM(3, 4, rng_key=k1),
    ...                                       pax.VanillaRNN(3 + 4, 4, rng_key=k2)])
    >>> state, y = net(net.initial_state(2), jnp.ones((2, 3)))
    >>> y.shape
    (2, 8)
    """
    return DeepRNN(
        layers,
        skip_connections=True,
        concat_final_output=concat_final_output,
        name=name,
    )


# ---------------------------------------------------------------------------
# unrolls
# ---------------------------------------------------------------------------


def _num_steps(input_sequence: Any, time_axis: int, owner: str) -> int:
    leaves = jax.tree_util.tree_leaves(input_sequence)
    if not leaves:
        raise ValueError(f"{owner}: `input_sequence` has no arrays")
    lengths = set()
    for leaf in leaves:
        shape = jnp.shape(leaf)
        if len(shape) <= time_axis:
            layout = "[T, ...]" if time_axis == 0 else "[B, T, ...]"
            raise ValueError(
                f"{owner}: every input leaf must be {layout} (time axis "
                f"{time_axis}), got shape {tuple(shape)}"
            )
        lengths.add(shape[time_axis])
    if len(lengths) != 1:
        raise ValueError(
            f"{owner}: the input leaves disagree on the number of time steps "
            f"(axis {time_axis}): {sorted(lengths)}"
        )
    return lengths.pop()


def _swap_batch_time(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), tree)


def _check_unroll(unroll: Any, owner: str) -> int | bool:
    if isinstance(unroll, bool):
        return unroll
    return positive_int(unroll, "unroll", owner)


def _like_carry(new_state: Any, state: Any) -> Any:
    """``new_state`` with each floating leaf in the dtype of the matching leaf
    of ``state``: the carry keeps one type from step to step (a core under a
    jmp policy returns its state in the policy's output dtype, whatever the
    dtype of the state it was given)."""
    new_leaves, treedef = jax.tree_util.tree_flatten(new_state)
    old_leaves = jax.tree_util.tree_leaves(state)
    if len(new_leaves) != len(old_leaves):
        return new_state  # not a state of the same structure: scan says so

    def cast(n: Any, o: Any) -> Any:
        nd, od = getattr(n, "dtype", None), getattr(o, "dtype", None)
        if (
            nd is not None
            and od is not None
            and nd != od
            and jnp.issubdtype(nd, jnp.floating)
            and jnp.issubdtype(od, jnp.floating)
        ):
            return n.astype(od)
        return n

    return treedef.unflatten([cast(n, o) for n, o in zip(new_leaves, old_leaves)])


def dynamic_unroll(
    core: Callable[[Any, Any], tuple[Any, Any]],
    input_sequence: Any,
    initial_state: Any,
    time_major: bool = True,
    reverse: bool = False,
    return_all_states: bool = False,
    unroll: int | bool = 1,
    *,
    keep_state_dtype: bool = True,
    scan: Callable[..., tuple[Any, Any]] = jax.lax.scan,
) -> tuple[Any, Any]:
    """Runs ``core`` over a sequence with one ``jax.lax.scan``.

    Equivalent to::

        state = initial_state
        for t in range(T):                   # reversed(range(T)) if reverse
            state, outputs[t] = core(state, input_sequence[t])

    Args:
      core: a core, or any function ``core(state, x) -> (new_state, output)``
        whose ``new_state`` has the structure and shapes of ``state``.
      input_sequence: a pytree of arrays ``[T, B, ...]`` (``time_major``) or
        ``[B, T, ...]``; all leaves share ``T`` (``T = 0`` gives empty
        outputs and returns ``initial_state``).
      initial_state: the state before the first step (``core.initial_state``);
        its floating dtypes are those of every state the unroll returns.
      time_major: the time axis is 0 (default) rather than 1.
      reverse: run from the last step to the first; ``outputs[t]`` is still
        the output for input ``t`` (as ``jax.lax.scan(reverse=True)``).
      return_all_states: return the state after every step (stacked like the
        outputs) instead of only the final one.
      unroll: how many steps each iteration of the compiled loop runs (an
        int >= 1, or True for a fully unrolled loop), as in ``jax.lax.scan``.
      keep_state_dtype: cast the floating leaves of each new state to the
        dtype of the matching leaf of ``initial_state`` (default), so the
        carry keeps one type, e.g. for a core under a
        :func:`pax.apply_mp_policy` policy whose steps return the state in the
        policy's output dtype. False passes the core's state on unchanged
        (``jax.lax.scan`` then needs it to keep its dtypes).
      scan: the loop, called ``scan(step, initial_state, xs, reverse=...,
        unroll=...)`` with ``jax.lax.scan``'s meaning (the default). A
        framework that threads its own state through the steps passes its
        own (``pax.hk.dynamic_unroll`` passes ``hk.scan``).

    Returns:
      ``(final_state, outputs)``: ``final_state`` has the state's structure
      (with ``return_all_states``: every leaf stacked ``[T, ...]``, or
      ``[B, T, ...]`` when not ``time_major``); ``outputs`` is a pytree of
      ``[T, B, ...]`` (or ``[B, T, ...]``) arrays.

    >>> import jax, jax.numpy as jnp, pax
    >>> lstm = pax.LSTM(3, 4, rng_key=jax.random.PRNGKey(0))
    >>> xs = jnp.ones((5, 2, 3))
    >>> state, ys = pax.nn.dynamic_unroll(lstm, xs, lstm.initial_state(2))
    >>> ys.shape, state.hidden.shape
    ((5, 2, 4), (2, 4))
    """
    owner = "dynamic_unroll"
    unroll = _check_unroll(unroll, owner)
    _num_steps(input_sequence, 0 if time_major else 1, owner)
    if not time_major:
        input_sequence = _swap_batch_time(input_sequence)

    def step(state, x):
        state, y = core(state, x)
        if keep_state_dtype:
            state = _like_carry(state, initial_state)
        return state, ((state, y) if return_all_states else y)

    final, stacked = scan(
        step, initial_state, input_sequence, reverse=bool(reverse), unroll=unroll
    )
    if return_all_states:
        final, outputs = stacked
    else:
        outputs = stacked
    if not time_major:
        outputs = _swap_batch_time(outputs)
        if return_all_states:
            final = _swap_batch_time(final)
    return final, outputs


def static_unroll(
    core: Callable[[Any, Any], tuple[Any, Any]],
    input_sequence: Any,
    initial_state: Any,
    time_major: bool = True,
    reverse: bool = False,
    return_all_states: bool = False,
    unroll: int | bool = 1,
    *,
    keep_state_dtype: bool = True,
) -> tuple[Any, Any]:
    """Runs ``core`` over a sequence with a Python loop (one call per step).

    Same arguments and results as :func:`dynamic_unroll`; under ``jax.jit``
    the loop is traced ``T`` times, so compile time grows with ``T``.

    Args:
      core: a core, or any function ``core(state, x) -> (new_state, output)``.
      input_sequence: a pytree of arrays ``[T, B, ...]`` (``time_major``) or
        ``[B, T, ...]``; all leaves share ``T >= 1`` (with no step there is
        no output to learn the structure of: ``T = 0`` raises a
        ``ValueError``; :func:`dynamic_unroll` accepts it).
      initial_state: the state before the first step.
      time_major: the time axis is 0 (default) rather than 1.
      reverse: run from the last step to the first (outputs keep their time
        index).
      return_all_states: return the state after every step, stacked.
      unroll: accepted for symmetry with :func:`dynamic_unroll`; it has no
        effect (the loop is already fully unrolled).
      keep_state_dtype: as in :func:`dynamic_unroll` (default True); with
        False the state may change dtype from step to step.

    Returns:
      ``(final_state, outputs)`` as :func:`dynamic_unroll`.

    >>> import jax, jax.numpy as jnp, pax
    >>> gru = pax.GRU(3, 4, rng_key=jax.random.PRNGKey(0))
    >>> xs = jnp.ones((2, 5, 3))                      # batch-major
    >>> states, ys = pax.nn.static_unroll(
    ...     gru, xs, gru.initial_state(2), time_major=False, return_all_states=True
    ... )
    >>> states.shape, ys.shape
    ((2, 5, 4), (2, 5, 4))
    """
    owner = "static_unroll"
    _check_unroll(unroll, owner)
    axis = 0 if time_major else 1
    num_steps = _num_steps(input_sequence, axis, owner)
    if num_steps == 0:
        raise ValueError(f"{owner}: `input_sequence` has no time steps")
    leaves, treedef = jax.tree_util.tree_flatten(input_sequence)
    # One unstack per leaf (not T slices): its VJP is a single stack.
    steps = [jnp.unstack(jnp.asarray(leaf), axis=axis) for leaf in leaves]
    order = range(num_steps - 1, -1, -1) if reverse else range(num_steps)
    state = initial_state
    states, outputs = [None] * num_steps, [None] * num_steps
    for t in order:
        state, outputs[t] = core(state, treedef.unflatten([x[t] for x in steps]))
        if keep_state_dtype:
            state = _like_carry(state, initial_state)
        states[t] = state

    def stack(seq):
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs, axis=axis), *seq)

    return (stack(states) if return_all_states else state), stack(outputs)
