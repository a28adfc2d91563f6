"""The registry of every pax.nn layer, for the cross-cutting tests.

Each layer family contributes a module ``entries_<family>.py`` in this folder
that defines ``ENTRIES``: a list of :class:`Entry`. ``test_registry.py`` runs
every cross-cutting check (eager == jit, grad, vmap, dtypes, repr/summary,
strict rank promotion) over all of them. Later layer issues add their own
``entries_*.py`` and list the module in ``FAMILIES`` below.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class Entry:
    """One layer configuration.

    name:       test id, e.g. "Conv2D-NCHW".
    make:       ``make(rng_key) -> module``.
    inputs:     ``inputs(rng_key, dtype) -> tuple of call arguments``; the first
                argument is the one whose dtype the output must follow.
    stateful:   the call mutates state in training mode (needs purecall).
    float_input: inputs are floating (False for e.g. token ids): dtype checks
                only apply when True.
    vmap:       whether vmapping over a leading batch of inputs is meaningful.
    differentiable: whether grad w.r.t. parameters makes sense (has any).
    """

    name: str
    make: Callable[[jax.Array], Any]
    inputs: Callable[[jax.Array, Any], tuple]
    stateful: bool = False
    float_input: bool = True
    vmap: bool = True
    differentiable: bool = True


FAMILIES = [
    "entries_linear",
    "entries_conv",
    "entries_pool",
    "entries_basic",
    "entries_norm",
    "entries_norm_sn",
    "entries_recurrent",
    "entries_layer_stack",
    "entries_attention",
    # whole networks (tests/nets), named by their full module path
    "tests.nets.entries_mlp",
    "tests.nets.entries_resnet",
    "tests.nets.entries_mobilenet",
    "tests.nets.entries_transformer",
    "tests.nets.entries_vqvae",
]


def all_entries() -> list[Entry]:
    out = []
    for family in FAMILIES:
        path = family if "." in family else f"{__package__}.{family}"
        try:
            module = importlib.import_module(path)
        except ModuleNotFoundError as e:
            if e.name == path:
                continue  # family not written yet
            raise
        out.extend(module.ENTRIES)
    return out
