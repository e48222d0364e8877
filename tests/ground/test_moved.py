"""The 0.1 module paths still import, with a DeprecationWarning naming the new home."""

import importlib
import sys

import pytest

from clipica._moved import MOVED, REMOVED_IN


@pytest.mark.parametrize("old", ["clipica.store", "clipica.artifacts", "clipica.ica"])
def test_an_old_path_warns_and_is_the_new_module(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {MOVED[old]}.*{REMOVED_IN}"):
        mod = importlib.import_module(old)
    assert mod is importlib.import_module(MOVED[old])


def test_every_new_home_exists():
    for new in MOVED.values():
        importlib.import_module(new)
