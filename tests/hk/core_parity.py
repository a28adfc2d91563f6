"""Run the same user code under dm-haiku and ``pax.hk`` and compare results.

User code is written as ``make_fn(hk)``: it receives the library module
(``haiku`` or ``pax.hk``) and returns the function to transform, so the very
same source runs under both. Trees are compared strictly: dict key order,
shapes, dtypes and the bytes of every array.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import haiku
import jax
import jax.numpy as jnp
import numpy as np

import pax.hk

LIBS = {"haiku": haiku, "pax": pax.hk}
KEY = jax.random.PRNGKey(7)
APPLY_KEY = jax.random.PRNGKey(11)


def key_bits(x: Any) -> Any:
    """Raw key data for typed PRNG keys, the value itself otherwise."""
    if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(x)
    return x


def assert_identical(a: Any, b: Any, path: str = "") -> None:
    """``a`` and ``b`` are the same tree with bit-identical arrays.

    Mappings must have the same keys in the same order.
    """
    where = path or "<root>"
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        assert isinstance(a, Mapping) and isinstance(b, Mapping), (where, a, b)
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_identical(a[k], b[k], f"{path}/{k}")
        return
    if isinstance(a, (tuple, list)) and not hasattr(a, "shape"):
        assert type(a) is type(b) or (
            isinstance(b, (tuple, list)) and type(a).__name__ == type(b).__name__
        ), f"{where}: {type(a)} != {type(b)}"
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{i}]")
        return
    if hasattr(a, "shape") and hasattr(a, "dtype"):
        assert hasattr(b, "shape") and hasattr(b, "dtype"), (where, a, b)
        a, b = key_bits(a), key_bits(b)
        assert a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}"
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        x, y = np.asarray(a), np.asarray(b)
        assert x.tobytes() == y.tobytes(), f"{where}: values differ\n{x}\n{y}"
        return
    assert a == b, f"{where}: {a!r} != {b!r}"


@dataclasses.dataclass
class Run:
    """What one library produced for ``init`` then ``apply``."""

    params: Any
    state: Any
    out: Any
    new_state: Any


def run_one(
    hk: Any,
    make_fn: Callable[[Any], Callable],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    rng: Any = KEY,
    apply_rng: Any = APPLY_KEY,
    params: Any = None,
    state: Any = None,
) -> Run:
    """``init`` then ``apply`` under one library (optionally with given params)."""
    kwargs = dict(kwargs or {})
    f = hk.transform_with_state(make_fn(hk))
    init_params, init_state = f.init(rng, *args, **kwargs)
    use_params = init_params if params is None else params
    use_state = init_state if state is None else state
    out, new_state = f.apply(use_params, use_state, apply_rng, *args, **kwargs)
    return Run(init_params, init_state, out, new_state)


def assert_same_as_haiku(
    make_fn: Callable[[Any], Callable],
    *args: Any,
    rng: Any = KEY,
    apply_rng: Any = APPLY_KEY,
    **kwargs: Any,
) -> Run:
    """Transform ``make_fn(hk)`` under both libraries and compare everything.

    ``pax.hk`` is also applied with Haiku's params/state, so ``apply`` is
    checked on identical inputs. Returns Haiku's results.
    """
    ref = run_one(haiku, make_fn, args, kwargs, rng=rng, apply_rng=apply_rng)
    got = run_one(pax.hk, make_fn, args, kwargs, rng=rng, apply_rng=apply_rng)
    assert_identical(ref.params, got.params, "params")
    assert_identical(ref.state, got.state, "state")
    assert_identical(ref.out, got.out, "out")
    assert_identical(ref.new_state, got.new_state, "new_state")
    cross = run_one(
        pax.hk,
        make_fn,
        args,
        kwargs,
        rng=rng,
        apply_rng=apply_rng,
        params=ref.params,
        state=ref.state,
    )
    assert_identical(ref.out, cross.out, "out (pax applied to haiku's params)")
    assert_identical(ref.new_state, cross.new_state, "new_state (haiku's params)")
    return ref


def shapes(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: tuple(x.shape), tree)


def catch(fn: Callable[[], Any]) -> BaseException:
    """The exception ``fn()`` raises (fails if it raises none)."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any exception is the result
        return e
    raise AssertionError("expected an exception, none was raised")


def _builtin_bases(t: type) -> list[type]:
    return [c for c in t.__mro__ if c.__module__ == "builtins"]


def assert_same_errors(
    call: Callable[[Any], Any], *must_name: str
) -> tuple[BaseException, BaseException]:
    """``call(hk)`` raises under both libraries; compare the errors.

    Our exception is of Haiku's class (by name) or a subclass of one of that
    name, with the same builtin bases; each string in ``must_name`` appears in
    both messages (Haiku's, checking the test, and ours).
    """
    ref = catch(lambda: call(haiku))
    got = catch(lambda: call(pax.hk))
    assert type(ref).__name__ in [c.__name__ for c in type(got).__mro__], (ref, got)
    assert _builtin_bases(type(ref)) == _builtin_bases(type(got)), (ref, got)
    for s in must_name:
        assert s in str(ref), f"test bug: {s!r} not in Haiku's {str(ref)!r}"
        assert s in str(got), f"{s!r} not in our message {str(got)!r}"
    return ref, got


def rand_init(hk: Any) -> Callable:
    """An initializer drawing from ``hk.next_rng_key()`` (so values depend on
    the exact key sequence)."""
    return lambda shape, dtype: jax.random.normal(hk.next_rng_key(), shape, dtype)


def layers(hk: Any) -> SimpleNamespace:
    """Small modules written once against either library."""

    class Dense(hk.Module):
        """``x @ w + b`` on 1-D input."""

        def __init__(self, size: int, name: str | None = None):
            super().__init__(name=name)
            self.size = size

        def __call__(self, x):
            w = hk.get_parameter("w", [x.shape[-1], self.size], x.dtype, rand_init(hk))
            b = hk.get_parameter("b", [self.size], x.dtype, init=jnp.zeros)
            return x @ w + b

    class Counter(hk.Module):
        """Counts its calls in state ``n``; adds a learned offset."""

        def __call__(self, x):
            n = hk.get_state("n", [], jnp.int32, init=jnp.zeros)
            hk.set_state("n", n + 1)
            return x + hk.get_parameter("c", [], x.dtype, rand_init(hk))

    class MLP(hk.Module):
        """Two Dense layers created in ``__init__`` (``mlp/~/dense``)."""

        def __init__(self, sizes: Sequence[int] = (3, 2), name: str | None = None):
            super().__init__(name=name)
            self.layers = [Dense(s) for s in sizes]

        def __call__(self, x):
            for layer in self.layers:
                x = jnp.tanh(layer(x))
            return x

    class Sequential(hk.Module):
        """Calls given modules in order (they are named where constructed)."""

        def __init__(self, fns, name: str | None = None):
            super().__init__(name=name)
            self.fns = list(fns)

        def __call__(self, x):
            for fn in self.fns:
                x = fn(x)
            return x

    return SimpleNamespace(Dense=Dense, Counter=Counter, MLP=MLP, Sequential=Sequential)


LAYERS = {name: layers(lib) for name, lib in LIBS.items()}


def L(hk: Any) -> SimpleNamespace:
    """The small modules for library ``hk`` (built once per library)."""
    return LAYERS["haiku" if hk is haiku else "pax"]
