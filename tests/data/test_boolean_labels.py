"""Boolean words in CSV/JSONL label columns (issue 26, defect 9): a ``yes``/``no`` column is a
binary label, not a column dropped without a message."""

from __future__ import annotations

import json
import math

import pytest

from clipica.data import open_source


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_yes_no_columns_are_binary_labels(tmp_path, kind):
    rows = [{"path": f"{i}.jpg", "smiling": s, "glasses": g, "note": n}
            for i, (s, g, n) in enumerate([("yes", "Y", "a"), ("No", "n", "b"), (" YES ", "", "c"),
                                           ("", "N", "yes")])]
    if kind == "csv":
        text = "path,smiling,glasses,note\n" + "".join(
            f"{r['path']},{r['smiling']},{r['glasses']},{r['note']}\n" for r in rows)
        (tmp_path / "t.csv").write_text(text)
    else:
        (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = open_source(f"{kind}:{tmp_path / ('t.' + kind)}")
    assert src.label_columns == ["smiling", "glasses"]  # `note` (free text) is no label
    smiling = [src.labels["smiling"][i] for i in range(4)]
    glasses = [src.labels["glasses"][i] for i in range(4)]
    assert smiling[:3] == [1, 0, 1] and math.isnan(smiling[3])
    assert glasses[0] == 1 and glasses[1] == 0 and math.isnan(glasses[2]) and glasses[3] == 0
