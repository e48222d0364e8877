"""The package's shape, read from every import statement (function-local ones included).

``python -m tests.helpers.house`` prints the figures the layout is held to: public modules at the
top of ``clipica/``, import circles between files and between subpackages, private names
imported across subpackages, modules over 600 lines and functions over 100 lines.
``tests/test_layers.py`` asserts them.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

#: the layers of ARCHITECTURE.md, highest first: a module imports only its own rank or below.
#: The analyses share one rank (they may use each other, never in a circle).
LAYERS = [
    ("cli", ["cli", "__main__"]),  # __main__ is `python -m clipica`, the CLI's entry point
    ("bench", ["bench"]),
    ("pipeline", ["pipeline"]),
    ("report", ["report"]),
    ("viz", ["viz"]),
    ("analyses", ["probes", "metrics", "naming", "intervene", "fewshot", "match", "simulate"]),
    ("decompositions", ["decompositions"]),
    ("embeddings", ["embeddings"]),
    ("models", ["models"]),
    ("data", ["data"]),
    ("ground", ["errors", "_atomic", "_cache", "_version", "_format", "_linalg", "_lazy", "_moved", "__init__"]),
]
RANK = {top: len(LAYERS) - i for i, (_, tops) in enumerate(LAYERS) for top in tops}
#: what may sit at the top of clipica/ besides private helpers
TOP_LEVEL = {"__init__", "__main__", "errors", "_version"}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100


@dataclass
class Module:
    name: str  # clipica.embeddings.store
    path: Path
    imports: list[tuple[int, str, str | None]] = field(default_factory=list)  # (line, module, name)

    @property
    def package(self) -> str:
        """``clipica.embeddings`` for ``clipica.embeddings.store``; ``clipica.errors`` stays itself."""
        return ".".join(self.name.split(".")[:2])

    @property
    def top(self) -> str:
        parts = self.name.split(".")
        return parts[1] if len(parts) > 1 else "__init__"


def read_package(root: Path) -> dict[str, Module]:
    """Every module of the package at ``root`` (a folder named ``clipica``) with its imports."""
    mods: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mod = Module(".".join(parts), path)
        base = parts if is_pkg else parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                mod.imports += [(node.lineno, a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    here = base[: len(base) - (node.level - 1)]
                    target = ".".join(here + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                mod.imports += [(node.lineno, target, a.name) for a in node.names]
        mods[mod.name] = mod
    return mods


def _resolve(mods: dict[str, Module], module: str, name: str | None) -> str | None:
    """The clipica module an import lands on (``from clipica.pipeline import artifacts`` -> the
    module ``clipica.pipeline.artifacts``); None outside clipica."""
    if name and f"{module}.{name}" in mods:
        return f"{module}.{name}"
    parts = module.split(".")
    while parts:
        if ".".join(parts) in mods:
            return ".".join(parts)
        parts.pop()
    return None


def edges(mods: dict[str, Module]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for m in mods.values():
        for _, module, name in m.imports:
            t = _resolve(mods, module, name)
            if t and t != m.name:
                out[m.name].add(t)
    return out


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []
    nodes = sorted(set(graph) | {w for ws in graph.values() for w in ws})
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def package_graph(mods: dict[str, Module]) -> dict[str, set[str]]:
    """Edges between subpackages (the top-level ground modules are leaves, left out)."""
    out: dict[str, set[str]] = defaultdict(set)
    for a, targets in edges(mods).items():
        for b in targets:
            pa, pb = mods[a].package, mods[b].package
            if pa != pb and pb != "clipica" and pa != "clipica":
                out[pa].add(pb)
    return out


def private_imports(mods: dict[str, Module]) -> list[str]:
    """``from X import _name`` where X's subpackage is not the importer's (ground helpers too)."""
    bad = []
    for m in mods.values():
        for line, module, name in m.imports:
            if not module.startswith("clipica") or not name:
                continue
            full = f"{module}.{name}"
            target = _resolve(mods, module, name)
            if target is None:
                continue
            private = name.startswith("_") and not name.startswith("__")
            if full in mods:  # a module imported by name: private when its own name is
                private = private and mods[full].package not in (f"clipica.{name}",)
            if private and mods[target].package != m.package:
                bad.append(f"{m.path.name}:{line} {m.name} imports {name} from {module}")
    return bad


def upward_imports(mods: dict[str, Module]) -> list[str]:
    bad = []
    for m in mods.values():
        for line, module, name in m.imports:
            t = _resolve(mods, module, name)
            if t is None:
                continue
            target = mods[t].top
            if target in (m.top, "__init__"):
                continue
            if RANK.get(target, 0) > RANK.get(m.top, 0):
                bad.append(f"{m.name}:{line} ({m.top}) imports {t} ({target}, a higher layer)")
    return bad


def long_functions(mods: dict[str, Module], limit: int = MAX_FUNCTION_LINES) -> list[tuple[int, str]]:
    out = []
    for m in mods.values():
        for node in ast.walk(ast.parse(m.path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1 + len(node.decorator_list)
                if n > limit:
                    out.append((n, f"{m.name}.{node.name}"))
    return sorted(out, reverse=True)


def long_modules(mods: dict[str, Module], limit: int = MAX_MODULE_LINES) -> list[tuple[int, str]]:
    sizes = ((len(m.path.read_text().splitlines()), m.name) for m in mods.values())
    return sorted((s for s in sizes if s[0] > limit), reverse=True)


def top_level_public(root: Path) -> list[str]:
    return sorted(p.stem for p in root.glob("*.py")
                  if p.stem not in TOP_LEVEL and not p.stem.startswith("_"))


def main(root: Path) -> int:
    mods = read_package(root)
    rows = [
        ("public modules at the top of clipica/ besides errors", top_level_public(root)),
        ("import circles between files", circles(edges(mods))),
        ("import circles between subpackages", circles(package_graph(mods))),
        ("private names imported across subpackages", private_imports(mods)),
        ("imports from a higher layer", upward_imports(mods)),
        (f"modules over {MAX_MODULE_LINES} lines", long_modules(mods)),
        (f"functions over {MAX_FUNCTION_LINES} lines", long_functions(mods)),
    ]
    for title, items in rows:
        print(f"{title}: {len(items)}")
        for item in items:
            print(f"    {item}")
    return 0


if __name__ == "__main__":
    import clipica

    sys.exit(main(Path(clipica.__file__).parent))
