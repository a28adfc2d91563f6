"""The registry of every pax.nn layer, for the cross-cutting tests.

Each layer family contributes a module ``entries_<family>.py`` in this folder
that defines ``ENTRIES``: a list of :class:`Entry`. ``test_registry.py`` runs
every cross-cutting check (eager == jit, grad, vmap, dtypes, repr/summary,
strict rank promotion) over all of them. Later layer issues add their own
``entries_*.py`` and list the module in ``FAMILIES`` below: a listed module
that does not exist is an error, not a skip.

Coverage (``test_registry_coverage.py``): every class in ``pax.nn.__all__``
and every Module class in ``pax.nets.__all__`` has an entry (an entry named
``"<ClassName>"`` or ``"<ClassName>-<variant>"`` covers the class whose name
is before the first ``-``; ``test_registry.py`` checks that the entry builds
exactly that class) or is in ``IGNORED`` with the reason why it has none.
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

    name:       test id, "<ClassName>" or "<ClassName>-<variant>", e.g.
                "Conv2D-NCHW": the class ``make`` builds, then the variant.
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


# Public classes with no registry entry, each with the reason why. Keep it
# short: a layer belongs in the registry unless it cannot be called there.
IGNORED: dict[str, str] = {
    # pax.nn
    "LSTMState": "not a Module: the (hidden, cell) NamedTuple that LSTM "
    "returns as its state (registered through the LSTM entries)",
    "RNNCore": "abstract base class (initial_state raises "
    "NotImplementedError); every concrete core in pax.nn has entries",
    "ConvNDLSTM": "the N-d implementation of the registered Conv1DLSTM, "
    "Conv2DLSTM and Conv3DLSTM; built directly in tests/nn/test_conv_lstm.py",
    "DepthwiseConvND": "the N-d implementation of the registered "
    "DepthwiseConv1D/2D/3D; built directly in tests/nn/test_depthwise.py",
    "KVCache": "decoding state with no __call__, made by "
    "MultiHeadAttention.init_cache; covered by tests/nn/test_attention.py",
    "RngSeq": "a key generator with no __call__ (next_rng_key); covered by "
    "tests/core/test_rng.py",
    # pax.nets
    "TransformerBlock": "runs as the stacked layer inside the registered "
    "Transformer and TransformerLM entries (time budget); numerics in "
    "tests/nets/test_transformer.py",
    **{
        f"ResNet{depth}": "a registered ResNet with Haiku's fixed CONFIGS"
        f"[{depth}] (too big for the registry's time budget); covered by "
        "tests/nets/test_resnet.py"
        for depth in (18, 34, 50, 101, 152, 200)
    },
}


def class_name(entry: Entry) -> str:
    """The name of the class ``entry`` covers: its name before the first ``-``."""
    return entry.name.split("-", 1)[0]


def _module_path(family: str) -> str:
    return family if "." in family else f"{__package__}.{family}"


def all_entries() -> list[Entry]:
    """Every family's ``ENTRIES``; a family listed in ``FAMILIES`` whose module
    is missing raises ``ModuleNotFoundError`` (the test run fails)."""
    out = []
    for family in FAMILIES:
        path = _module_path(family)
        try:
            module = importlib.import_module(path)
        except ModuleNotFoundError as e:
            if e.name == path:
                raise ModuleNotFoundError(
                    f"registry family {family!r} is listed in FAMILIES "
                    f"(tests/nn/registry.py) but module {path} does not exist: "
                    "write it (defining ENTRIES) or remove it from FAMILIES",
                    name=path,
                ) from e
            raise
        out.extend(module.ENTRIES)
    return out


def uncovered(
    classes: dict[str, type], entries: list[Entry], ignored: dict[str, str]
) -> list[str]:
    """The names in ``classes`` with neither an entry nor an ``ignored`` reason."""
    have = {class_name(e) for e in entries}
    return sorted(n for n in classes if n not in have and n not in ignored)


def missing_message(names: list[str]) -> str:
    """What to tell the developer who added ``names`` without entries."""
    lines = [
        f"{len(names)} public class(es) with no layer-registry entry: "
        + ", ".join(names),
        "For each, either",
        '  * add Entry("<ClassName>" or "<ClassName>-<variant>", make, inputs, ...)'
        " to the ENTRIES of its family module tests/nn/entries_<family>.py"
        " (pax.nets: tests/nets/entries_<net>.py; list a new module in FAMILIES"
        " in tests/nn/registry.py), or",
        '  * add "<ClassName>": "<why it has no entry>" to IGNORED in'
        " tests/nn/registry.py.",
    ]
    return "\n".join(lines)
