import json

import numpy as np

from clipica._atomic import atomic_write_json


def test_json_handles_numpy_scalars_arrays_and_nan(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_json(path, {"a": np.float32(1.5), "b": np.arange(3), "c": [np.nan, 2.0], "d": np.array([[np.inf]])})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": [None, 2.0], "d": [[None]]}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left behind


def test_atomic_write_gives_the_umask_mode_not_0600(tmp_path):
    import os
    import stat

    from clipica._atomic import atomic_write_json

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
        os.umask(0o077)
        atomic_write_json(tmp_path / "b.json", {"x": 1})
        assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_saved_decomposition_folder_gets_the_umask_mode_not_0700(tmp_path):
    import os
    import stat

    from clipica.decompositions import PCA

    X = np.random.default_rng(0).normal(size=(40, 5))
    old = os.umask(0o022)
    try:
        PCA(n_components=2).fit(X).save(tmp_path / "pca")
        assert stat.S_IMODE((tmp_path / "pca").stat().st_mode) == 0o755
        os.umask(0o077)
        PCA(n_components=2).fit(X).save(tmp_path / "pca2")
        assert stat.S_IMODE((tmp_path / "pca2").stat().st_mode) == 0o700
    finally:
        os.umask(old)
