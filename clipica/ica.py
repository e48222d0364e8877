"""Moved to :mod:`clipica.decompositions.ica`; ``from clipica.ica import ICA`` keeps working.

This module *is* the new one (``sys.modules`` alias), so monkeypatching either name
patches both.
"""

import importlib
import sys

_impl = importlib.import_module("clipica.decompositions.ica")  # the module, whatever the package exports

sys.modules[__name__] = _impl
