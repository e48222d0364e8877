"""The house rules of ARCHITECTURE.md, read from every import statement (function-local ones
count: the house puts heavy imports there, and they are dependencies all the same).

``python -m tests.helpers.house`` prints the same figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import clipica
from tests.helpers import house

PACKAGE = Path(clipica.__file__).parent
MODS = house.read_package(PACKAGE)

#: debts being paid this round; each list may only shrink (a test fails when an entry is gone,
#: so that it is removed here too)
KNOWN_CIRCLES: list[list[str]] = []
KNOWN_PRIVATE: set[tuple[str, str]] = set()
KNOWN_LONG_MODULES: set[str] = set()
#: at most this many functions over 100 lines (docstrings included)
MAX_LONG_FUNCTIONS = 3


def test_every_module_has_a_layer():
    missing = sorted({m.top for m in MODS.values() if m.top not in house.RANK})
    assert not missing, f"modules without a layer (add them to tests/helpers/house.py LAYERS): {missing}"


def test_only_ground_modules_at_the_top():
    assert house.top_level_public(PACKAGE) == []


def test_nothing_outside_the_cli_imports_the_cli():
    bad = [f"{m.name}:{line} imports {module}" for m in MODS.values() if m.top not in ("cli", "__main__")
           for line, module, _ in m.imports if module == "clipica.cli" or module.startswith("clipica.cli.")]
    assert not bad, "library modules must not drive the command line:\n" + "\n".join(bad)


def test_layers_import_only_downward():
    bad = house.upward_imports(MODS)
    assert not bad, "imports from a higher layer:\n" + "\n".join(bad)


def test_no_import_circle_between_files():
    found = house.circles(house.edges(MODS))
    assert sorted(found) == sorted(KNOWN_CIRCLES), f"import circles: {found}"


def test_no_import_circle_between_subpackages():
    assert house.circles(house.package_graph(MODS)) == []


def test_no_private_name_imported_across_subpackages():
    found = house.private_imports(MODS)
    unknown = [f for f in found if not any(f" {m} imports {n} " in f for m, n in KNOWN_PRIVATE)]
    assert not unknown, "private names used from another subpackage (make them public there):\n" + "\n".join(unknown)
    gone = {k for k in KNOWN_PRIVATE if not any(f" {k[0]} imports {k[1]} " in f for f in found)}
    assert not gone, f"remove these from KNOWN_PRIVATE: {sorted(gone)}"


def test_no_module_over_600_lines():
    long = {name for _, name in house.long_modules(MODS)}
    assert long <= KNOWN_LONG_MODULES, f"modules over {house.MAX_MODULE_LINES} lines: {sorted(long - KNOWN_LONG_MODULES)}"
    assert not KNOWN_LONG_MODULES - long, f"remove from KNOWN_LONG_MODULES: {sorted(KNOWN_LONG_MODULES - long)}"


def test_few_functions_over_100_lines():
    long = house.long_functions(MODS)
    assert len(long) <= MAX_LONG_FUNCTIONS, "\n".join(f"{n} lines: {name}" for n, name in long)


@pytest.mark.parametrize("kind", ["circle", "private", "upward"])
def test_the_checker_sees_a_planted_violation(tmp_path, kind):
    """The checker itself: a circle, a private import and an upward import written into a copy
    of a small package are each found."""
    root = tmp_path / "clipica"
    for sub in ("data", "models"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "data" / "a.py").write_text("def _hidden():\n    pass\n")
    if kind == "circle":
        (root / "data" / "a.py").write_text("def f():\n    from clipica.data import b\n")
        (root / "data" / "b.py").write_text("from clipica.data.a import f\n")
        assert house.circles(house.edges(house.read_package(root))) == [["clipica.data.a", "clipica.data.b"]]
    elif kind == "private":
        (root / "models" / "m.py").write_text("def g():\n    from clipica.data.a import _hidden\n")
        assert len(house.private_imports(house.read_package(root))) == 1
    else:
        (root / "data" / "c.py").write_text("def h():\n    from clipica.models import m\n")
        (root / "models" / "m.py").write_text("")
        assert len(house.upward_imports(house.read_package(root))) == 1
