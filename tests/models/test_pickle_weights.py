"""A pickle passed as ``--pretrained`` (issue 26, defect 13): refused in one line that never
suggests ``weights_only=False`` (which would run the pickle's code), with no torch warning."""

from __future__ import annotations

import os
import warnings

from clipica.cli import main


class _Payload:
    """Unpickling it creates a folder: the proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickle_as_pretrained_is_one_line_and_never_unpickled(tmp_path, capsys):
    import torch

    from tests.helpers.fake_models import register_tiny_open_clip

    arch = register_tiny_open_clip(tmp_path)
    marker = tmp_path / "code-ran"
    evil = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": _Payload(marker)}}, evil)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(["extract", "--model", arch, "--pretrained", str(evil), "--data", "synthetic-faces:4",
                   "--out", str(tmp_path / "s"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "weights_only" not in err and "not unpickled" in err and str(evil) in err
    assert not [w for w in caught if "weights_only" in str(w.message)]
    assert not marker.exists()


def test_the_same_weights_as_a_plain_state_dict_load(tmp_path):
    import torch

    from clipica.models import load_encoder
    from tests.helpers.fake_models import register_tiny_open_clip

    arch = register_tiny_open_clip(tmp_path)
    state = load_encoder(arch, pretrained="none").model.state_dict()
    torch.save(state, tmp_path / "weights.pt")
    enc = load_encoder(arch, pretrained=str(tmp_path / "weights.pt"))
    assert enc.embed_dim > 0
