"""What the tests share: fake-but-real-format datasets (:mod:`.fake_datasets`), random-weight
real architectures (:mod:`.fake_models`), planted sources (:mod:`.planted`), and where things are.

Import as ``from tests.helpers.fake_models import save_tiny_hf_clip``.
"""

from pathlib import Path

#: the repository root (the folder holding ``clipica/`` and ``tests/``)
REPO = Path(__file__).resolve().parents[2]
#: files that broke clipica in practice (copied from the project's shared fixtures)
FIXTURES = REPO / "tests" / "fixtures"
