"""The simulations drawn (clipica.viz.simulate): bars are the means over seeds per setting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _heights(fig) -> dict[str, list[float]]:
    ax = fig.axes[0]
    return {c.get_label(): [round(p.get_height(), 6) for p in c.patches] for c in ax.containers
            if hasattr(c, "patches")}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ica_recovery_bars_are_the_mean_over_seeds_per_setting(seed):
    from clipica.viz import plot_ica_recovery

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"setting": ["sphere", "sphere", "convex", "convex"], "seed": [0, 1, 0, 1],
                       "mcc_before_ica": rng.random(4), "mcc_after_ica": rng.random(4)})
    h = _heights(plot_ica_recovery(df))
    assert set(h) == {"MCC before ICA", "MCC after ICA"}  # no r2 column: no bar for it
    want = df.groupby("setting", sort=False)["mcc_after_ica"].mean().round(6).tolist()
    assert h["MCC after ICA"] == want
    assert [t.get_text() for t in plot_ica_recovery(df).axes[0].get_xticklabels()] == ["sphere", "convex"]


def test_block_recovery_draws_each_block_present_content_first():
    from clipica.viz import plot_block_recovery

    df = pd.DataFrame({"setting": ["independent", "style-change-0.75"], "seed": [0, 0],
                       "r2_nonlinear_content": [0.97, 0.95], "r2_nonlinear_style": [0.1, 0.3],
                       "r2_nonlinear_m1": [0.0, 0.05], "r2_linear_content": [0.5, 0.4]})
    h = _heights(plot_block_recovery(df))
    assert list(h) == ["content", "style", "m1"]
    assert h["content"] == [0.97, 0.95] and h["style"] == [0.1, 0.3]
    assert _heights(plot_block_recovery(df, kind="linear")) == {"content": [0.5, 0.4]}
