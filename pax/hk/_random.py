"""``hk.experimental.optimize_rng_use``: split all the keys a function needs
with one ``jax.random.split``."""

from __future__ import annotations

import functools

import jax

from . import _base


class _CountingSequence(_base.PRNGSequence):
    """A PRNGSequence that counts the keys handed out."""

    __slots__ = ("count",)

    def __init__(self, state):
        super().__init__(state)
        self.count = 0

    def __next__(self):
        self.count += 1
        return super().__next__()

    next = __next__


def optimize_rng_use(fun):
    """Wrap ``fun`` so its ``hk.next_rng_key`` calls share one key split.

    ``fun`` first runs under ``jax.eval_shape`` (no flops) to count the keys
    it draws; then that many keys are reserved at once and ``fun`` runs for
    real. Keys differ from the unoptimized function's.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f():
    ...     return [jax.random.uniform(hk.next_rng_key(), ()) for _ in range(3)]
    >>> f = hk.transform(hk.experimental.optimize_rng_use(f))
    >>> len(f.apply({}, jax.random.PRNGKey(0)))
    3
    """

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        frame = _base.assert_context("optimize_rng_use")
        seq = frame.rng_stack[-1]
        counter = {}

        def dry_run(params, state, rng, *args, **kwargs):
            counting = None if rng is None else _CountingSequence(rng)
            inner = _base.Frame(
                {m: dict(v) for m, v in params.items()},
                _base.state_from_mapping(state),
                counting,
                frozen=frame.frozen,
            )
            with _base.push_frame(inner):
                fun(*args, **kwargs)
            counter["n"] = 0 if counting is None else counting.count

        params = _base.collect_params(frame)
        state = _base.collect_state(frame, initial=False)
        rng = None if seq is None else seq.internal_state
        jax.eval_shape(dry_run, params, state, rng, *args, **kwargs)
        if counter.get("n") and seq is not None:
            seq.reserve(counter["n"])
        return fun(*args, **kwargs)

    return wrapper
