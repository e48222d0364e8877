"""Moved to :mod:`clipica.decompositions.stability`; ``from clipica.stability import sweep_k``
keeps working (this module *is* the new one, a ``sys.modules`` alias)."""

import importlib
import sys

# by its full name: clipica.decompositions also exports a *function* called 'stability'
_impl = importlib.import_module("clipica.decompositions.stability")

sys.modules[__name__] = _impl
