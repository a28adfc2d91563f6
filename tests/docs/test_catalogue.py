"""The catalogue guide names every public class of pax.nn and pax.nets."""

import inspect
import pathlib
import re

import pytest

import pax

CATALOGUE = pathlib.Path(__file__).parents[2] / "docs" / "guides" / "catalogue.md"


def _public_classes(module):
    return [n for n in module.__all__ if inspect.isclass(getattr(module, n))]


@pytest.mark.parametrize("module", [pax.nn, pax.nets], ids=lambda m: m.__name__)
def test_every_public_class_is_in_the_catalogue(module):
    text = CATALOGUE.read_text(encoding="utf-8")
    # a whole word: `Conv2D` must not count as a mention of `Conv2DLSTM`'s
    # prefix, nor `ResNet` be found only inside `ResNet50`
    missing = [
        name
        for name in _public_classes(module)
        if not re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text)
    ]
    assert not missing, (
        f"docs/guides/catalogue.md does not mention these {module.__name__} "
        f"classes: {missing}"
    )


def test_the_check_sees_classes():
    # guards against a vacuous pass (an empty __all__ or a wrong filter)
    assert "Linear" in _public_classes(pax.nn)
    assert "TransformerLM" in _public_classes(pax.nets)
    assert "dynamic_unroll" not in _public_classes(pax.nn)
