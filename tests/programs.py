"""Counting the XLA programs a piece of eager code dispatches for the first
time (public ``jax.monitoring`` events: one lowering per program)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import jax

_LOWERED = "/jax/core/compile/jaxpr_to_mlir_module_duration"


@contextlib.contextmanager
def count_programs() -> Iterator[Callable[[], int]]:
    """``with count_programs() as n: ...``; ``n()`` is the number of programs
    lowered inside the block (each eager primitive or jitted function seen
    for the first time with these shapes is one; a cached one is zero)."""
    seen = []

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == _LOWERED:
            seen.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield lambda: len(seen)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
