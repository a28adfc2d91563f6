"""Containers and plumbing: ``Sequential``, ``Lambda``, ``Identity``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jax

from .._core.module import Module


def _function_name(func: Callable) -> str:
    for candidate in (func, getattr(func, "fun", None), getattr(func, "func", None)):
        name = getattr(candidate, "__name__", None)
        if name:
            return name
    return repr(func)


class Lambda(Module):
    """Wraps a plain function as a (parameter-free) module.

    Args:
      func: any callable, stored as static data (it is not a pytree leaf).
      name: optional module name.

    Input and output: whatever ``func`` takes and returns.

    >>> import jax, jax.numpy as jnp, pax
    >>> relu = pax.Lambda(jax.nn.relu)
    >>> print(relu.summary())
    x => relu(x)
    >>> relu(jnp.array([-1.0, 2.0]))
    Array([0., 2.], dtype=float32)
    """

    def __init__(self, func: Callable[..., Any], *, name: str | None = None):
        super().__init__(name=name)
        if not callable(func):
            raise TypeError(f"Lambda: `func` must be callable, got {func!r}")
        self.func = func

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)

    def _summary_line(self) -> str:
        name = self.name if self.name is not None else _function_name(self.func)
        return f"x => {name}(x)"


class Identity(Module):
    """Returns its input unchanged. Input ``[...]``, output the same.

    >>> import jax.numpy as jnp, pax
    >>> pax.Identity()(jnp.ones((2,)))
    Array([1., 1.], dtype=float32)
    """

    def __init__(self, *, name: str | None = None):
        super().__init__(name=name)

    def __call__(self, x):
        return x


class Sequential(Module):
    """Applies layers in order: ``y = layers[-1](...layers[0](x))``.

    Args:
      *layers: modules or plain functions (functions are wrapped in
        :class:`Lambda`), stored in the tuple ``layers``.
      name: optional module name.

    Input: what the first layer takes; output: what the last returns.
    Indexing gives a layer (``seq[0]``), slicing a ``Sequential``
    (``seq[1:]``); ``seq.set(i, layer)`` returns a copy with layer ``i``
    replaced.

    >>> import jax, jax.numpy as jnp, pax
    >>> net = pax.Sequential(
    ...     pax.Linear(2, 3, rng_key=jax.random.PRNGKey(0)),
    ...     jax.nn.relu,
    ...     pax.Linear(3, 1, rng_key=jax.random.PRNGKey(1)),
    ... )
    >>> print(net.summary())
    Sequential
    ├── Linear(in_dim=2, out_dim=3, with_bias=True)
    ├── x => relu(x)
    └── Linear(in_dim=3, out_dim=1, with_bias=True)
    >>> net(jnp.ones((4, 2))).shape
    (4, 1)
    """

    def __init__(self, *layers: Module | Callable[..., Any], name: str | None = None):
        super().__init__(name=name)
        self.layers = tuple(_as_module(f, i) for i, f in enumerate(layers))

    def __call__(self, x, *args, **kwargs):
        """Feed ``x`` through every layer; extra arguments go to the first."""
        with jax.named_scope("pax.nn.Sequential"):
            for i, layer in enumerate(self.layers):
                x = layer(x, *args, **kwargs) if i == 0 else layer(x)
            return x

    def __getitem__(self, index: int | slice):
        if isinstance(index, slice):
            return Sequential(*self.layers[index], name=self.name)
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def set(self, index: int, layer: Module | Callable[..., Any]) -> Sequential:
        """A copy with ``layers[index]`` replaced by ``layer``."""
        layers = list(self.layers)
        layers[index] = _as_module(layer, index)
        return self.replace(layers=tuple(layers))

    def __rshift__(self, other: Module | Callable[..., Any]) -> Sequential:
        """``seq >> layer``: a new Sequential with ``layer`` appended."""
        return Sequential(*self.layers, other, name=self.name)


def _as_module(layer: Any, index: int) -> Module:
    if isinstance(layer, Module):
        return layer
    if callable(layer):
        return Lambda(layer)
    raise TypeError(
        f"Sequential: layer {index} must be a pax.Module or a function, "
        f"got {type(layer).__name__}"
    )
