"""The layer registry covers the public API: every class in ``pax.nn.__all__``
and every Module class in ``pax.nets.__all__`` has an entry or an ``IGNORED``
reason, and every family module exists and is listed (see registry.py)."""

import inspect
import pathlib

import pytest

import pax

from . import registry
from .registry import IGNORED, all_entries, class_name, missing_message, uncovered

TESTS = pathlib.Path(__file__).resolve().parent.parent


def public_classes() -> dict[str, type]:
    """Every class in ``pax.nn.__all__``, every Module class in ``pax.nets``."""
    out = {}
    for name in pax.nn.__all__:
        obj = getattr(pax.nn, name)
        if inspect.isclass(obj):
            out[name] = obj
    for name in pax.nets.__all__:
        obj = getattr(pax.nets, name)
        if inspect.isclass(obj) and issubclass(obj, pax.Module):
            assert name not in out, f"{name} is in both pax.nn and pax.nets"
            out[name] = obj
    return out


def test_every_public_class_has_an_entry_or_an_ignore_reason():
    missing = uncovered(public_classes(), all_entries(), IGNORED)
    assert not missing, missing_message(missing)


def test_a_new_class_without_an_entry_fails_and_says_what_to_add():
    class BrandNewLayer(pax.Module):
        def __call__(self, x):
            return x

    classes = {"Linear": pax.Linear, "BrandNewLayer": BrandNewLayer}
    missing = uncovered(classes, all_entries(), IGNORED)
    assert missing == ["BrandNewLayer"]
    message = missing_message(missing)
    assert "BrandNewLayer" in message
    assert "tests/nn/entries_<family>.py" in message and "ENTRIES" in message
    assert "IGNORED" in message and "tests/nn/registry.py" in message
    # an ignore reason is the other way out
    assert not uncovered(classes, all_entries(), {**IGNORED, "BrandNewLayer": "x"})


def test_ignore_list_is_current():
    classes = public_classes()
    covered = {class_name(e) for e in all_entries()}
    for name, reason in IGNORED.items():
        assert name in classes, f"IGNORED[{name!r}]: no such public class (remove it)"
        assert name not in covered, f"IGNORED[{name!r}]: it has an entry (remove it)"
        assert isinstance(reason, str) and len(reason) > 10, f"IGNORED[{name!r}]"


def test_every_entry_names_a_public_class():
    classes = public_classes()
    bad = [e.name for e in all_entries() if class_name(e) not in classes]
    assert not bad, (
        f"entries {bad}: a name is '<ClassName>' or '<ClassName>-<variant>' with "
        "a class from pax.nn.__all__ or pax.nets.__all__"
    )


def test_every_family_module_is_listed_in_families():
    on_disk = {p.stem for p in (TESTS / "nn").glob("entries_*.py")}
    on_disk |= {f"tests.nets.{p.stem}" for p in (TESTS / "nets").glob("entries_*.py")}
    unlisted = sorted(on_disk - set(registry.FAMILIES))
    assert not unlisted, f"add {unlisted} to FAMILIES in tests/nn/registry.py"


def test_a_listed_family_that_does_not_exist_is_an_error(monkeypatch):
    monkeypatch.setattr(registry, "FAMILIES", [*registry.FAMILIES, "entries_nope"])
    with pytest.raises(ModuleNotFoundError, match="'entries_nope' is listed in"):
        all_entries()
    monkeypatch.setattr(registry, "FAMILIES", ["tests.nets.entries_nope"])
    with pytest.raises(ModuleNotFoundError, match="write it .* or remove it"):
        all_entries()
