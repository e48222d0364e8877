import json

import numpy as np

from clipica._atomic import atomic_write_json


def test_json_handles_numpy_scalars_arrays_and_nan(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_json(path, {"a": np.float32(1.5), "b": np.arange(3), "c": [np.nan, 2.0], "d": np.array([[np.inf]])})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": [None, 2.0], "d": [[None]]}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left behind
