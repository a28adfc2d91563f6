"""``hk.testing``: run a function that uses modules without writing the
transform boilerplate (for tests and notebooks)."""

from __future__ import annotations

__all__ = ["transform_and_run"]

import functools
from collections.abc import Callable
from typing import Any

import jax

from ._transform import transform_with_state


def transform_and_run(
    f: Callable[..., Any] | None = None,
    seed: int | None = 42,
    run_apply: bool = True,
    jax_transform: Callable[[Callable], Callable] | None = None,
    *,
    map_rng: Callable[[jax.Array], jax.Array] | None = None,
):
    """Transform ``f``, run ``init`` (key from ``seed``) and, unless
    ``run_apply=False``, ``apply`` (key from ``seed + 1``); return apply's
    output (or ``None``). Usable as ``@transform_and_run`` or
    ``@transform_and_run(seed=...)``.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> @hk.testing.transform_and_run
    ... def f():
    ...     return hk.get_parameter("w", [2], init=jnp.ones) * 3
    >>> f()
    Array([3., 3.], dtype=float32)
    """
    if f is None:
        return functools.partial(
            transform_and_run,
            seed=seed,
            run_apply=run_apply,
            jax_transform=jax_transform,
            map_rng=map_rng,
        )

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        if seed is None:
            init_rng = apply_rng = None
        else:
            init_rng = jax.random.PRNGKey(seed)
            apply_rng = jax.random.PRNGKey(seed + 1)
            if map_rng is not None:
                init_rng, apply_rng = map_rng(init_rng), map_rng(apply_rng)
        init, apply = transform_with_state(lambda: f(*args, **kwargs))
        if jax_transform is not None:
            init, apply = jax_transform(init), jax_transform(apply)
        params, state = init(init_rng)
        if run_apply:
            out, _ = apply(params, state, apply_rng)
            return out
        return None

    return wrapper
