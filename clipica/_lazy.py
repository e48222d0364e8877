"""Lazy re-exports (PEP 562): a package lists ``name -> module`` and imports on first access.

``import clipica`` and the CLI's parser must not pull in torch, scikit-learn or matplotlib;
the packages that re-export heavy objects (``clipica``, ``clipica.decompositions``,
``clipica.viz``) share this one implementation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict,
                 listed: Iterable[str] = ()) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose ``exports`` map names to modules.

    A name equal to its module's last part (``clipica.metrics`` for ``metrics``) resolves to
    the module itself, and so does a value written ``"module:clipica.decompositions.stability"``
    (a module exported under a shorter name). Resolved values are stored in ``namespace`` (the package's
    ``globals()``), so each import happens once. ``__dir__`` lists ``listed`` (e.g. the
    package's ``__all__``) and the exports.
    """

    def __getattr__(name: str) -> Any:
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        whole = module_name.startswith("module:")
        module = importlib.import_module(module_name.removeprefix("module:"))
        value = module if whole or module_name == f"{package}.{name}" else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(listed) | set(exports))

    return __getattr__, __dir__
