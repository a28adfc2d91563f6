"""``hk.Deferred``: a module whose construction waits until it is first used.

The factory runs on first use, but the module it builds is named as if it had
been built where the ``Deferred`` was created (same parent module, same method
prefix), so parameter names do not depend on when the module materialises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from . import _base
from ._module import Module

T = TypeVar("T", bound=Module)

_UNSET = object()


@contextlib.contextmanager
def _as_if_inside(state: _base.ModuleState | None) -> Iterator[None]:
    """Put ``state`` back on top of the module stack (naming only: the name
    counters of the current scope stay in use, as in Haiku)."""
    if state is None:
        yield
        return
    stack = _base.current_frame().module_stack
    stack.append(state)
    try:
        yield
    finally:
        stack.pop()


class Deferred(Generic[T]):
    """Wrap a module factory; the module is built the first time it is needed.

    ``factory()`` (no arguments) must return a module. It runs once, the first
    time the wrapper is called, one of ``call_methods`` is used, or ``target``
    is read; the module is named as if it had been built where the ``Deferred``
    itself was created. Afterwards attribute reads, writes and deletes on the
    wrapper go to the built module (before that, reading an attribute the
    wrapper lacks raises ``AttributeError``).

    This lets one module depend on what another learns when first called, e.g.
    a decoder mapping back to an encoder's input size (``[B, 32] -> [B, 64]
    -> [B, 32]``):

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     encoder = hk.Linear(64)
    ...     decoder = hk.Deferred(lambda: hk.Linear(encoder.input_size))
    ...     y = encoder(x)  # sets encoder.input_size = 32
    ...     z = decoder(y)  # builds hk.Linear(32) now
    ...     assert decoder.output_size == 32  # forwarded to the Linear
    ...     return z
    >>> params = hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([8, 32]))
    >>> {k: v["w"].shape for k, v in params.items()}
    {'linear': (32, 64), 'linear_1': (64, 32)}

    Like every module, a ``Deferred`` must be created inside a transformed
    function (``ValueError`` otherwise).

    Args:
      factory: no-argument callable returning the module to defer to.
      call_methods: names of methods that build the module then call the
        method of the same name on it. ``"__call__"`` (the default) makes the
        wrapper itself callable; other names become attributes of the wrapper,
        e.g. ``call_methods=("encode", "decode")``.
    """

    def __init__(
        self,
        factory: Callable[[], T],
        call_methods: Sequence[str] = ("__call__",),
    ):
        frame = _base.assert_context("Deferred")
        self._factory = factory
        self._target = None
        self._creation_state = frame.module_stack[-1] if frame.module_stack else None
        for method_name in call_methods:
            if method_name != "__call__":
                setattr(self, method_name, _build_then_call(self, method_name))

    @property
    def target(self) -> T:
        """The wrapped module, built by the factory on first access (then the
        same instance every time)."""
        if self._target is None:
            with _as_if_inside(self._creation_state):
                target = self._factory()
            # set directly: once built, plain assignment would go to the target
            object.__setattr__(self, "_target", target)
            object.__setattr__(self, "_factory", None)
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.target(*args, **kwargs)

    def __str__(self) -> str:
        return f"Deferred({self.target})"

    def __repr__(self) -> str:
        return f"Deferred({self.target!r})"

    def _built(self) -> Any:
        """The built module, or ``_UNSET`` (also while ``__init__`` runs)."""
        target = self.__dict__.get("_target")
        return _UNSET if target is None else target

    def __getattr__(self, name: str) -> Any:
        # only reached when normal lookup fails
        target = self._built()
        if target is not _UNSET:
            return getattr(target, name)
        raise AttributeError(
            f"'{type(self).__name__}' object has no attribute '{name}'"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        target = self._built()
        if name != "_target" and target is not _UNSET:
            setattr(target, name, value)
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        target = self._built()
        if name != "_target" and target is not _UNSET:
            delattr(target, name)
        else:
            object.__delattr__(self, name)


def _build_then_call(deferred: Deferred, method_name: str) -> Callable[..., Any]:
    def method(*args: Any, **kwargs: Any) -> Any:
        return getattr(deferred.target, method_name)(*args, **kwargs)

    method.__name__ = method_name
    return method
