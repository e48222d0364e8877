"""Importing the optional ``overcomplete`` package (the ``clipica[sae]`` extra).

overcomplete 0.3.0 imports its plotting helpers at package import, and those call
``matplotlib.cm.get_cmap``, which matplotlib 3.9 removed: the import fails on any
current matplotlib. The shim below restores that one name (it is
``matplotlib.colormaps.get_cmap`` under its old spelling) before importing; it changes
nothing for code that does not use the old name.
"""

from __future__ import annotations

from clipica.errors import DependencyError

INSTALL_HINT = "pip install 'clipica[sae]' (or pip install overcomplete)"


def import_overcomplete():
    """The ``overcomplete`` module; DependencyError naming the extra when it is missing."""
    try:
        import matplotlib.cm

        if not hasattr(matplotlib.cm, "get_cmap"):
            import matplotlib

            matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap
    except ImportError:  # overcomplete needs matplotlib; its own import will say so
        pass
    try:
        import overcomplete
    except ImportError as exc:
        raise DependencyError(
            f"this decomposition needs the optional package 'overcomplete' ({exc}); "
            f"install it with {INSTALL_HINT}"
        ) from None
    return overcomplete
