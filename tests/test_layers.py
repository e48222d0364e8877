"""The layers of ARCHITECTURE.md import only downward, and nothing outside the CLI imports it.

Every ``import`` of a ``clipica`` module anywhere in a file counts, including those inside
functions (the house puts heavy imports there; they are dependencies all the same).
"""

from __future__ import annotations

import ast
from pathlib import Path

import clipica

PACKAGE = Path(clipica.__file__).parent

#: rank of each layer, highest first (ARCHITECTURE.md "Layers"); a module may import only
#: modules of its own rank or below. Modules in one analysis layer may use each other.
LAYERS = [
    ("cli", ["cli", "__main__"]),  # __main__ is `python -m clipica`, the CLI's entry point
    ("demo", ["demo", "bench"]),
    ("pipeline", ["pipeline"]),
    ("report", ["report", "report_text", "report_html", "report_sections", "report_fewshot"]),
    ("viz", ["viz"]),
    ("analyses", ["probes", "metrics", "naming", "naming_chance", "intervene", "decoder", "fewshot", "compare", "categorical", "block_traversal",
                  "simulate"]),
    ("decompositions", ["decompositions", "ica", "stability", "_fastica_torch", "pca", "baselines"]),
    ("store", ["store", "extraction", "extraction_ray"]),
    ("models", ["models"]),
    ("data", ["data", "naming_vocab"]),
    ("artifacts", ["artifacts"]),
    ("ground", ["errors", "_atomic", "_cache", "_version", "_format", "_lock", "_linalg", "_lazy", "__init__"]),
]
#: upward imports that exist today and are being removed (the analyses' ``plot=`` figures
#: moved to ``clipica.viz`` with the probes/intervene split). The test fails when one of
#: them is gone, so that this list only shrinks, and on any import not listed.
KNOWN_UPWARD: set[tuple[str, str]] = set()
RANK = {top: len(LAYERS) - i for i, (_, tops) in enumerate(LAYERS) for top in tops}


def _top(module: str) -> str | None:
    """``clipica.pipeline.run`` -> ``pipeline``; None for a non-clipica module."""
    parts = module.split(".")
    if parts[0] != "clipica":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    pkg = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    if rel.name == "__init__":
        pkg = list(rel.parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = (pkg if rel.name == "__init__" else list(rel.parts[:-1]))
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            if mod == "clipica":  # from clipica import artifacts, errors ...
                out += [(node.lineno, f"clipica.{a.name}") for a in node.names]
    return out


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        top = rel.parts[0].removesuffix(".py")
        yield path, rel, top


def test_every_module_has_a_layer():
    missing = sorted({top for _, _, top in _modules() if top not in RANK})
    assert not missing, f"modules without a layer in this test (add them to LAYERS): {missing}"


def test_nothing_outside_the_cli_imports_the_cli():
    bad = []
    for path, rel, top in _modules():
        if RANK.get(top) == RANK["cli"]:
            continue
        for line, mod in _imports(path):
            if (mod == "clipica.cli" or mod.startswith("clipica.cli.")) and (top, mod) not in KNOWN_UPWARD:
                bad.append(f"{rel}:{line} imports {mod}")
    assert not bad, "library modules must not drive the command line:\n" + "\n".join(bad)


def test_layers_import_only_downward():
    bad, seen = [], set()
    for path, rel, top in _modules():
        if top not in RANK:
            continue
        for line, mod in _imports(path):
            target = _top(mod)
            if target is None or target == top or target == "__init__":
                continue
            if target in RANK and RANK[target] > RANK[top]:
                if (top, mod) in KNOWN_UPWARD:
                    seen.add((top, mod))
                    continue
                bad.append(f"{rel}:{line} ({top}) imports {mod} ({target}, a higher layer)")
    assert not bad, "imports from a higher layer:\n" + "\n".join(bad)
    gone = KNOWN_UPWARD - seen
    assert not gone, f"these upward imports are gone; remove them from KNOWN_UPWARD: {sorted(gone)}"


def test_the_checker_sees_a_violation(tmp_path):
    """The checker itself: an upward import written to a file is found."""
    f = PACKAGE / "data" / "_layers_probe_tmp.py"
    assert not f.exists()
    try:
        f.write_text("def f():\n    from clipica.pipeline import run\n")
        found = [m for _, m in _imports(f)]
        assert "clipica.pipeline" in found
        assert RANK[_top("clipica.pipeline")] > RANK["data"]
    finally:
        f.unlink()
