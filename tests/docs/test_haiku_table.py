"""The "Coming from Haiku" guide cannot rot.

``docs/guides/haiku.md`` ends with tables mapping every public name of
``pax.hk`` (and of ``hk.nets``, ``hk.initializers``, ``hk.pad``) to its
native counterpart. These tests parse the tables and fail when a public name
is missing, when a row names something ``pax.hk`` no longer has, when a
``pax.``-qualified name in a row does not resolve, and when the guide's
"unchanged under pax.hk" program differs from its dm-haiku original in more
than the import.
"""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

import pax.hk

GUIDE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "guides" / "haiku.md"
TABLE_SECTION = "## Every Haiku name and its native counterpart"
DASH = "—"
PAX_NAME = re.compile(r"(?<![\w.])pax(?:\.[A-Za-z_]\w*)+")


def _text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    rest = text[start + len(heading) :]
    end = re.search(r"^## ", rest, flags=re.M)
    return rest if end is None else rest[: end.start()]


def _rows() -> list[tuple[str, str, str]]:
    """(haiku name, native cell, notes cell) for every table row."""
    rows = []
    for line in _section(_text(), TABLE_SECTION).splitlines():
        if not line.startswith("| `hk"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 3, f"a row needs 3 cells: {line!r}"
        name = re.fullmatch(r"`(hk(?:\.\w+)+)`", cells[0])
        assert name, f"the first cell must be one `hk.<name>`: {line!r}"
        rows.append((name.group(1), cells[1], cells[2]))
    return rows


def _public_names() -> set[str]:
    names = {f"hk.{n}" for n in pax.hk.__all__}
    for sub in ("nets", "initializers", "pad"):
        names |= {f"hk.{sub}.{n}" for n in getattr(pax.hk, sub).__all__}
    return names


def _resolve(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj


def test_table_has_every_public_haiku_name():
    listed = [name for name, _, _ in _rows()]
    duplicates = sorted({n for n in listed if listed.count(n) > 1})
    assert not duplicates, f"listed twice: {duplicates}"
    missing = sorted(_public_names() - set(listed))
    assert not missing, f"public pax.hk names missing from {GUIDE.name}: {missing}"


def test_table_names_only_what_pax_hk_has():
    stale = sorted(set(name for name, _, _ in _rows()) - _public_names())
    assert not stale, f"rows for names pax.hk does not export: {stale}"


def test_every_native_name_in_the_table_resolves():
    bad = []
    for name, native, notes in _rows():
        for dotted in PAX_NAME.findall(native + " " + notes):
            try:
                _resolve(dotted)
            except (AttributeError, ImportError):
                bad.append(f"{name}: {dotted}")
    assert not bad, f"names that do not exist: {bad}"


def test_rows_have_a_counterpart_or_say_what_to_do():
    for name, native, notes in _rows():
        if native == DASH:
            assert notes.startswith("Haiku-only:") and len(notes) > len(
                "Haiku-only: "
            ), f"{name}: a dash row must say 'Haiku-only: <what to do natively>'"
        else:
            assert PAX_NAME.search(native), f"{name}: no pax.* name in {native!r}"


def _first_block_after(text: str, heading: str) -> list[str]:
    after = text[text.index(heading) :]
    block = re.search(r"```pycon\n(.*?)```", after, flags=re.S)
    assert block, f"no pycon block after {heading!r}"
    return block.group(1).splitlines()


@pytest.mark.parametrize("drop", ["import haiku as hk", "import pax.hk as hk"])
def test_imports_are_where_the_programs_say(drop):
    text = _text()
    heading = "### 1. dm-haiku" if "haiku as" in drop else "### 2. The same code"
    assert f">>> {drop}" in _first_block_after(text, heading)


def test_the_pax_hk_program_is_the_dm_haiku_program():
    text = _text()
    haiku_code = _first_block_after(text, "### 1. dm-haiku")
    pax_code = _first_block_after(text, "### 2. The same code")
    haiku_code.remove(">>> import haiku as hk")
    pax_code.remove(">>> import pax.hk as hk")
    assert pax_code == haiku_code
