"""Moved to :mod:`clipica.decompositions.ica`; ``from clipica.ica import ICA`` keeps working.

This module *is* the new one (``sys.modules`` alias), so monkeypatching either name
patches both.
"""

import sys

from clipica.decompositions import ica as _impl

sys.modules[__name__] = _impl
