"""`clipica bench intervene`: its store has images and labels, its timer reads a fresh process."""

from __future__ import annotations

import numpy as np


def test_store_has_planted_rows_images_and_labels(tmp_path):
    from clipica.bench.intervene import write_store

    store = write_store(tmp_path / "s", 60, d=16, k=4, attributes=3, chunk=25)
    assert store.image.shape == (60, 16) and np.all(np.isfinite(store.image))
    assert store.label_columns == ["attr_00", "attr_01", "attr_02"]
    assert set(np.unique(store.rows[store.label_columns].to_numpy())) <= {0.0, 1.0}
    images = store.load_images([0, 59])
    assert [im.size for im in images] == [(64, 64), (64, 64)]


def test_time_command_measures_a_fresh_process():
    from clipica.bench.intervene import time_command

    r = time_command(["--version"])
    assert r["wall_seconds"] >= r["in_process_seconds"] > 0 and r["cpu_seconds"] > 0
    assert 1 < r["peak_rss_mib"] < 4096
