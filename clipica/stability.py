"""Moved to :mod:`clipica.decompositions.stability`; ``from clipica.stability import sweep_k``
keeps working (this module *is* the new one, a ``sys.modules`` alias)."""

import sys

from clipica.decompositions import stability as _impl

sys.modules[__name__] = _impl
