"""Sphinx configuration for the PAX documentation site.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The API reference pages (``docs/api/*.md``) are generated from each public
module's ``__all__`` when the build starts (see ``_api.py``), so a new public
name appears without editing a page; a public name without a docstring, or a
name that the reference does not describe, is a warning, and ``-W`` makes it
an error.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import _api  # noqa: E402  (docs/_api.py, next to this file)

project = "PAX"
author = "The PAX authors"
copyright = "2026, The PAX authors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "**/outputs/*.txt"]

myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# Type hints name many things that have no page here (jax.Array, optax
# types, typing constructs): resolving them would need the network
# (intersphinx), which the build machines do not have.
nitpicky = False
suppress_warnings = ["myst.xref_missing"]

html_theme = "furo"
html_title = "PAX"
html_static_path = ["_static"]
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True


def setup(app):
    _api.setup(app)
    return {"parallel_read_safe": True}
