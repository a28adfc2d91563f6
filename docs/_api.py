"""Generates the API reference pages from the public modules' ``__all__``.

Each page lists a module's public names grouped by the private file that
defines them (PAX keeps one layer family per file, so the file is the
family). ``setup`` hooks two checks into the build: a public name whose
docstring is empty, and a public name the reference does not describe, are
warnings (errors under ``sphinx-build -W``).
"""

from __future__ import annotations

import importlib
import inspect
import os
import types

from sphinx.util import logging

logger = logging.getLogger(__name__)

HERE = os.path.dirname(os.path.abspath(__file__))
API_DIR = os.path.join(HERE, "api")

# (module, page file, page title, intro), in the order the pages are written.
# An object exported by several modules is described on the first page that
# exports it; later pages link to it.
PAGES = [
    ("pax.nn", "nn", "pax.nn: layers", "Every layer, RNN core and container."),
    ("pax.nn.pad", "nn_pad", "pax.nn.pad", "Padding functions for the convolutions."),
    ("pax.nets", "nets", "pax.nets: networks", "Whole networks built from pax.nn."),
    (
        "pax.initializers",
        "initializers",
        "pax.initializers",
        "Initializers: ``init(rng_key, shape, dtype) -> array``.",
    ),
    ("pax.optim", "optim", "pax.optim", "optax optimizers as PAX modules."),
    ("pax.utils", "utils", "pax.utils", "Small helpers."),
    ("pax.sharding", "sharding", "pax.sharding", "Sharding rules on jax.sharding."),
    ("pax.checkpoint", "checkpoint", "pax.checkpoint", "Orbax checkpoint manager."),
    ("pax.distributed", "distributed", "pax.distributed", "jax.distributed glue."),
    ("pax.hk", "hk", "pax.hk: Haiku's API", "``import pax.hk as hk`` runs Haiku code."),
    ("pax.hk.initializers", "hk_initializers", "pax.hk.initializers", ""),
    ("pax.hk.nets", "hk_nets", "pax.hk.nets", ""),
    ("pax.hk.pad", "hk_pad", "pax.hk.pad", ""),
    ("pax.hk.mixed_precision", "hk_mixed_precision", "pax.hk.mixed_precision", ""),
    ("pax.hk.data_structures", "hk_data_structures", "pax.hk.data_structures", ""),
    ("pax.hk.experimental", "hk_experimental", "pax.hk.experimental", ""),
    ("pax.hk.config", "hk_config", "pax.hk.config", ""),
    ("pax.hk.testing", "hk_testing", "pax.hk.testing", ""),
    ("pax", "pax", "pax: the core", "Modules, pure functions, randomness, I/O."),
]

# Section titles for the private files that define public names.
TITLES = {
    "module": "Modules",
    "pure": "Pure functions and calls",
    "transforms": "Transforms",
    "autograd": "Gradients",
    "rng": "Randomness",
    "frozen": "Immutability",
    "errors": "Errors",
    "_checkpoint": "Checkpoints",
    "_safetensors": "safetensors",
    "_export": "Export",
    "_mixed_precision": "Mixed precision",
    "_tabulate": "Inspection",
    "_linear": "Linear",
    "_basic": "Basic modules",
    "_conv": "Convolutions",
    "_conv_transpose": "Transposed convolutions",
    "_conv_lstm": "Convolutional LSTMs",
    "_conv_utils": "Convolution helpers",
    "_depthwise": "Depthwise and separable convolutions",
    "_recurrent": "Recurrent cores",
    "_attention": "Attention",
    "_embed": "Embedding",
    "_pool": "Pooling",
    "_batch_norm": "Batch normalization",
    "_layer_norm": "Layer and RMS normalization",
    "_group_norm": "Group normalization",
    "_norm": "Normalization",
    "_moving_averages": "Moving averages",
    "_spectral_norm": "Spectral normalization",
    "_dropout": "Dropout",
    "_reshape": "Reshaping",
    "_batch_apply": "Batch apply",
    "_containers": "Containers",
    "_layer_stack": "Layer stack",
    "_data_format": "Data formats",
    "_mlp": "MLP",
    "_resnet": "ResNet",
    "_mobilenet": "MobileNet",
    "_arch": "Architectures by name",
    "_transformer": "Transformer",
    "_vqvae": "Vector quantisation",
    "_initializers": "Initializers",
    "_transform": "Transforms",
    "_module": "Modules",
    "_base": "Parameters, state and randomness",
    "_stateful": "JAX transforms inside a transform",
    "_lift": "Lifting",
    "_utils": "Utilities",
    "_typing": "Type hints",
    "_bridge": "Bridge to native PAX",
    "_convert": "Bridge to native PAX",
    "_deferred": "Bridge to native PAX",
    "_native": "Bridge to native PAX",
    "_random": "Randomness",
    "_summarise": "Summaries",
    "_jaxpr_info": "jaxpr info",
}


def public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        # No __all__: the public names are those the module itself defines.
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and _is_code(v)
            and getattr(v, "__module__", "").startswith(module.__name__)
        ]
    return list(names)


def _section(obj, module_name: str) -> str:
    home = getattr(obj, "__module__", None) if _is_code(obj) else None
    if not home or not home.startswith("pax"):
        return "Type hints" if home else "Constants"
    leaf = home.rsplit(".", 1)[-1]
    if home == module_name:
        return "Functions" if inspect.isfunction(obj) else "Classes"
    return TITLES.get(leaf, leaf.strip("_").replace("_", " ").capitalize())


def _is_code(obj) -> bool:
    return inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)


def _entry(fq: str, obj) -> str:
    if inspect.isclass(obj):
        return (
            f".. autoclass:: {fq}\n   :members:\n   :special-members: __call__\n"
            "   :show-inheritance:\n"
        )
    if callable(obj) and _is_code(obj):
        return f".. autofunction:: {fq}\n"
    return f".. autodata:: {fq}\n   :no-value:\n"


def write_pages() -> set[str]:
    """Writes ``docs/api/*.md``; returns the fully qualified names described."""
    os.makedirs(API_DIR, exist_ok=True)
    described_by_id: dict[int, str] = {}
    public: set[str] = set()
    toc = []
    for module_name, page, title, intro in PAGES:
        module = importlib.import_module(module_name)
        sections: dict[str, list[str]] = {}
        for name in public_names(module):
            obj = getattr(module, name)
            fq = f"{module_name}.{name}"
            if isinstance(obj, types.ModuleType):
                continue  # a subpackage: it has its own page
            public.add(fq)
            first = described_by_id.get(id(obj)) if _is_code(obj) else None
            if first is not None:
                kind = "class" if inspect.isclass(obj) else "function"
                role = "class" if kind == "class" else "func"
                text = (
                    f".. py:{kind}:: {name}\n   :no-index-entry:\n\n"
                    f"   The same object as :py:{role}:`{first}`.\n"
                )
                sections.setdefault("Re-exported", []).append(text)
                continue
            if _is_code(obj):
                described_by_id[id(obj)] = fq
            sections.setdefault(_section(obj, module_name), []).append(_entry(fq, obj))
        lines = [f"# {title}", ""]
        if intro:
            lines += [intro, ""]
        lines += ["```{eval-rst}", f".. py:module:: {module_name}", "```", ""]
        for section, entries in sections.items():
            lines += [f"## {section}", "", "```{eval-rst}"]
            for entry in entries:
                lines += [entry]
            lines += ["```", ""]
        path = os.path.join(API_DIR, f"{page}.md")
        text = "\n".join(lines)
        old = open(path).read() if os.path.exists(path) else None
        if old != text:  # keep mtimes stable for incremental builds
            with open(path, "w") as f:
                f.write(text)
        toc.append(page)
    index = ["# API reference", "", "```{toctree}", ":maxdepth: 1", ""]
    index += [toc[-1], *toc[:-1], "```", ""]
    with open(os.path.join(API_DIR, "index.md"), "w") as f:
        f.write("\n".join(index))
    return public


def setup(app) -> None:
    public = write_pages()

    def check_docstring(app, what, name, obj, options, lines):
        if name in public and not any(line.strip() for line in lines):
            logger.warning(f"public name {name} has no docstring", type="pax")

    def check_described(app, env):
        objects = env.get_domain("py").objects
        missing = sorted(fq for fq in public if fq not in objects)
        for fq in missing:
            logger.warning(f"public name {fq} is not in the API reference", type="pax")

    app.connect("autodoc-process-docstring", check_docstring)
    app.connect("env-check-consistency", check_described)
