"""Old module paths of clipica 0.1, kept for one release: importing one warns and names its
new home (``clipica.store`` -> ``clipica.embeddings.store``).

No files stand at the old paths (the top of ``clipica/`` holds only ``__init__``, ``__main__``,
``errors`` and private helpers); a finder on ``sys.meta_path`` answers for them instead, and
hands back the new module itself, so monkeypatching either name patches both.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: the release that removes the old names
REMOVED_IN = "0.3"
MOVED = {
    "clipica.store": "clipica.embeddings.store",
    "clipica.extraction": "clipica.embeddings.extract",
    "clipica.extraction_ray": "clipica.embeddings.ray_engine",
    "clipica.report_html": "clipica.report.html",
    "clipica.report_sections": "clipica.report.sections",
    "clipica.report_text": "clipica.report.text",
    "clipica.report_fewshot": "clipica.report.fewshot",
    "clipica.naming_chance": "clipica.naming.chance",
    "clipica.compare": "clipica.probes.compare",
    "clipica.categorical": "clipica.probes.categorical",
    "clipica.block_traversal": "clipica.intervene.block_traversal",
    "clipica.decoder": "clipica.intervene.decoder",
    "clipica.artifacts": "clipica.pipeline.artifacts",
    "clipica.demo": "clipica.pipeline.demo",
    "clipica.ica": "clipica.decompositions.ica",
    "clipica.models.train_tiny": "clipica.models.tiny.train",
    "clipica.models.tiny_checkpoint": "clipica.models.tiny.checkpoint",
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old name is removed in clipica {REMOVED_IN}",
                      DeprecationWarning, stacklevel=3)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass  # the new module is already executed; importlib files it under the old name too


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (called by ``clipica/__init__``)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())  # before editable-install finders, which map by name
