"""clipica.simulate: generators, mixings, training, tables, CLI (fast; < 60 s on 2 cores)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipica.errors import InputError
from clipica.simulate.latents import (
    MultimodalLatents,
    PartialCausalLatents,
    sample_vmf,
    vmf_mean_resultant_length,
    wishart_covariance,
)
from clipica.simulate.mixing import make_mixing, make_mixings

# ---------------------------------------------------------------- latent models


def test_multimodal_shapes():
    lat = MultimodalLatents(content_dim=3, style_dim=2, m1_dim=4, m2_dim=1)
    d = lat.sample(50, 0)
    assert d["content"].shape == (50, 3)
    assert d["style"].shape == d["style_tilde"].shape == d["change_mask"].shape == (50, 2)
    assert d["m1"].shape == (50, 4) and d["m2"].shape == (50, 1)
    assert d["z1"].shape == (50, lat.view_dims[0]) == (50, 9)
    assert d["z2"].shape == (50, lat.view_dims[1]) == (50, 6)
    # z1 = [c, s, m1], z2 = [c, s_tilde, m2]
    np.testing.assert_array_equal(d["z1"][:, :3], d["z2"][:, :3])
    np.testing.assert_array_equal(d["z2"][:, 3:5], d["style_tilde"])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.75, 1.0])
def test_style_changes_only_where_mask_is_set(seed, p):
    d = MultimodalLatents(p_change=p, style_dim=4).sample(4000, seed)
    changed = d["style_tilde"] != d["style"]
    np.testing.assert_array_equal(changed, d["change_mask"])
    # the mask is Bernoulli(p) per sample and dimension
    assert abs(d["change_mask"].mean() - p) < 4 * np.sqrt(p * (1 - p) / d["change_mask"].size) + 1e-12


@pytest.mark.parametrize("seed", [0, 3, 11])
def test_dependent_blocks_get_different_covariances(seed):
    lat = MultimodalLatents(dependent=True, structure_seed=seed)
    st = lat.structure()
    covs = [st[f"cov_{b}"] for b in ("content", "style", "m1", "m2")]
    for i in range(4):
        assert np.allclose(np.diag(covs[i]), 1.0)
        assert np.linalg.eigvalsh(covs[i]).min() > 0
        off = covs[i][~np.eye(5, dtype=bool)]
        assert np.abs(off).max() > 0.05  # actually dependent
        for j in range(i + 1, 4):
            assert np.abs(covs[i] - covs[j]).max() > 0.05  # the original code's bug: identical
    # the samples follow the drawn covariance
    d = lat.sample(20000, seed + 100, st)
    np.testing.assert_allclose(np.cov(d["content"].T), st["cov_content"], atol=0.06)
    # another structure seed gives another model
    assert not np.allclose(MultimodalLatents(dependent=True, structure_seed=seed + 1)
                           .structure()["cov_content"], st["cov_content"])


def test_wishart_draws_differ_within_one_generator():
    rng = np.random.default_rng(0)
    a, b = wishart_covariance(4, rng), wishart_covariance(4, rng)
    assert not np.allclose(a, b)


def test_content_dependent_style_is_linear_in_content():
    lat = MultimodalLatents(content_dependent_style=True, structure_seed=4)
    st = lat.structure()
    d = lat.sample(20000, 1, st)
    resid = d["style"] - d["content"] @ st["B"].T - st["a"]
    # what is left is the independent unit-variance style noise
    np.testing.assert_allclose(resid.mean(0), 0.0, atol=0.05)
    np.testing.assert_allclose(np.cov(resid.T), np.eye(5), atol=0.06)


@pytest.mark.parametrize("d,kappa", [(3, 1.0), (3, 10.0), (5, 20.0), (10, 5.0), (2, 50.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_vmf_mean_resultant_length_matches_bessel_ratio(d, kappa, seed):
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((20000, d))
    mu /= np.linalg.norm(mu, axis=1, keepdims=True)
    x = sample_vmf(mu, kappa, rng)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-9)
    cos = np.sum(mu * x, axis=1)
    expected = vmf_mean_resultant_length(d, kappa)
    assert abs(cos.mean() - expected) < 4 * cos.std() / np.sqrt(cos.size)


def test_vmf_bessel_ratio_known_values():
    # d = 3: A_3(k) = coth(k) - 1/k (closed form)
    for k in (0.5, 2.0, 30.0):
        assert vmf_mean_resultant_length(3, k) == pytest.approx(1 / np.tanh(k) - 1 / k, rel=1e-10)
    # kappa -> 0: uniform, kappa large: concentrated
    assert vmf_mean_resultant_length(5, 1e-6) < 1e-5
    assert vmf_mean_resultant_length(5, 1e4) > 0.999
    with pytest.raises(InputError):
        sample_vmf(np.ones((3, 1)), 1.0)


@pytest.mark.parametrize("prior", ["uniform", "independent", "cap", "dependent"])
def test_partial_causal_sphere(prior):
    lat = PartialCausalLatents(geometry="sphere", prior=prior, coupled_dim=4, mx_dim=2, mt_dim=3)
    d = lat.sample(3000, 0)
    assert d["z_x"].shape == d["z_t"].shape == (3000, 4)
    assert d["z1"].shape == (3000, 6) and d["z2"].shape == (3000, 7)
    np.testing.assert_allclose(np.linalg.norm(d["z_x"], axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(d["z_t"], axis=1), 1.0, atol=1e-9)
    cos = np.sum(d["z_x"] * d["z_t"], axis=1)
    assert abs(cos.mean() - vmf_mean_resultant_length(4, lat.kappa)) < 0.01
    mean_dir = np.linalg.norm(d["z_x"].mean(0))
    if prior == "cap":
        assert mean_dir > 0.5  # concentrated
    else:
        assert mean_dir < 0.1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_independent_sphere_prior_is_ica_recoverable_but_uniform_is_not(seed):
    # the premise of the sphere + ICA setting: an exact rotation of the
    # "independent" prior is undone by linear ICA, while the uniform prior is
    # rotation invariant, so ICA has nothing to find
    import warnings

    from clipica.decompositions.ica import ICA
    from clipica.metrics import mcc

    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    scores = {}
    for prior in ("independent", "uniform"):
        z = PartialCausalLatents(geometry="sphere", prior=prior).sample(3000, seed)["z_x"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = ICA(n_components=5, random_state=seed, max_iter=1000).fit_transform(z @ q.T)
        scores[prior] = mcc(s, z).score
    assert scores["independent"] > 0.95
    assert scores["uniform"] < 0.9


@pytest.mark.parametrize("mode", ["clip", "reflect"])
@pytest.mark.parametrize("prior", ["uniform", "nonuniform", "dependent"])
def test_partial_causal_convex_stays_in_box(mode, prior):
    lat = PartialCausalLatents(geometry="convex", prior=prior, box_mode=mode, laplace_scale=0.3)
    d = lat.sample(5000, 1)
    for k in ("z_x", "z_t"):
        assert d[k].min() >= -1.0 and d[k].max() <= 1.0
    diff = d["z_t"] - d["z_x"]
    assert 0.05 < np.abs(diff).mean() < 0.3
    if prior == "dependent":
        c = np.corrcoef(d["z_x"][:, 0], d["z_x"][:, 1])[0, 1]
        assert c > 0.3
        # marginals stay uniform on [-1, 1]: variance 1/3
        np.testing.assert_allclose(d["z_x"].var(0), 1 / 3, atol=0.03)


def test_reflect_is_exact_inside_and_folds_outside():
    lat = PartialCausalLatents(geometry="convex", box_mode="reflect")
    z = np.array([[0.5, -0.2], [1.2, -1.3], [3.5, -2.9]])
    np.testing.assert_allclose(lat._into_box(z), [[0.5, -0.2], [0.8, -0.7], [-0.5, 0.9]])


def test_bad_options_raise_input_error():
    with pytest.raises(InputError):
        MultimodalLatents(p_change=1.5)
    with pytest.raises(InputError):
        PartialCausalLatents(geometry="torus")
    with pytest.raises(InputError):
        PartialCausalLatents(geometry="convex", prior="cap")
    with pytest.raises(InputError):
        PartialCausalLatents(geometry="sphere", conditional="laplace")


# ---------------------------------------------------------------- mixings


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixing_is_invertible_well_conditioned_and_reproducible(weights, seed):
    g = make_mixing(8, n_layers=3, seed=seed, weights=weights)
    conds = g.condition_numbers()
    assert len(conds) == 3
    if weights == "orthogonal":
        np.testing.assert_allclose(conds, 1.0, atol=1e-9)
    else:
        # below the 25th percentile of random 8x8 row-normalised Gaussian matrices
        assert max(conds) < 20.0
    z = np.random.default_rng(seed).standard_normal((500, 8))
    x = g(z)
    assert not np.allclose(x, z @ g.weights[0].T)  # nonlinear
    np.testing.assert_allclose(g.inverse(x), z, atol=1e-8)
    again = make_mixing(8, n_layers=3, seed=seed, weights=weights)
    for a, b in zip(g.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    other = make_mixing(8, n_layers=3, seed=seed + 10, weights=weights)
    assert not np.allclose(g.weights[0], other.weights[0])


def test_mixings_distinct_per_modality_unless_shared():
    g1, g2 = make_mixings((6, 6), seed=3)
    assert not np.allclose(g1.weights[0], g2.weights[0])
    s1, s2 = make_mixings((6, 6), seed=3, share=True)
    assert s1 is s2
    with pytest.raises(InputError):
        make_mixings((6, 7), share=True)
    with pytest.raises(InputError):
        make_mixing(4, weights="sparse")


def test_max_cond_bound_is_respected():
    g = make_mixing(5, n_layers=4, seed=0, max_cond=6.0)
    assert max(g.condition_numbers()) <= 6.0


# ---------------------------------------------------------------- training


def test_infonce_values():
    torch = pytest.importorskip("torch")
    from clipica.simulate.train import symmetric_infonce

    n = 8
    a = torch.eye(n)
    # perfectly separated, very sharp: loss -> 0; all-equal codes: log(n)
    assert float(symmetric_infonce(a, a, "clip", 0.01)) < 1e-6
    z = torch.zeros(n, 3)
    for loss in ("clip", "l1", "sql2"):
        assert float(symmetric_infonce(z + 1.0, z + 1.0, loss, 1.0)) == pytest.approx(np.log(n))
    # ensemble shape: one value per member
    e = symmetric_infonce(torch.randn(3, n, 4), torch.randn(3, n, 4), "sql2", 1.0)
    assert e.shape == (3,)


def test_miniature_training_moves_content_r2():
    from clipica.metrics import r2
    from clipica.simulate.train import TrainConfig, train_contrastive

    lat = MultimodalLatents(content_dim=2, style_dim=2, m1_dim=1, m2_dim=1)
    st = lat.structure()
    g1, g2 = make_mixings(lat.view_dims, seed=0, weights="orthogonal")

    def sampler(n, rng):
        d = lat.sample(n, rng, st)
        return g1(d["z1"]), g2(d["z2"])

    cfg = TrainConfig(loss="sql2", encoding_dim=2, hidden_dim=32, n_hidden=2, batch_size=128,
                      lr=1e-2, device="cpu")
    untrained, trained = [train_contrastive([sampler], lat.view_dims,
                                            TrainConfig(**{**cfg.__dict__, "steps": s}))[0]
                          for s in (0, 400)]
    d = lat.sample(1000, np.random.default_rng(5), st)
    x = g1(d["z1"])
    tr, te = np.arange(500), np.arange(500, 1000)
    before = r2(untrained.encode(x), d["content"], train=tr, test=te).score
    after = r2(trained.encode(x), d["content"], train=tr, test=te).score
    assert after > 0.7 and after > before + 0.3, (before, after)
    assert trained.losses[-1] < trained.losses[0]


def test_ensemble_members_are_independent_runs():
    from clipica.simulate.train import TrainConfig, train_contrastive

    lat = MultimodalLatents(content_dim=2, style_dim=1, m1_dim=1, m2_dim=1)
    g1, g2 = make_mixings(lat.view_dims, seed=1, weights="orthogonal")

    def sampler(n, rng):
        d = lat.sample(n, rng)
        return g1(d["z1"]), g2(d["z2"])

    cfg = TrainConfig(encoding_dim=2, hidden_dim=16, n_hidden=1, batch_size=32, steps=5,
                      device="cpu")
    pair = train_contrastive([sampler, sampler], lat.view_dims, cfg, seeds=[7, 8])
    assert [p.config.seed for p in pair] == [7, 8]
    x = g1(lat.sample(10, 0)["z1"])
    assert not np.allclose(pair[0].encode(x), pair[1].encode(x))
    assert pair[0].encode(x).shape == (10, 2)
    # a member is the same run whether trained alone or beside others
    alone = train_contrastive([sampler], lat.view_dims, cfg, seeds=[8])[0]
    np.testing.assert_allclose(alone.encode(x), pair[1].encode(x), atol=1e-4)
    with pytest.raises(InputError):
        pair[0].encode(x[:, :2])


# ---------------------------------------------------------------- tables and CLI

_TINY = {"steps": 20, "batch_size": 32, "n_val": 120, "n_test": 120, "n_landmarks": 40,
         "hidden_dim": 16, "n_hidden": 1}


def test_results_files_have_the_documented_fields(tmp_path):
    from clipica.simulate import run_experiment, write_results

    df = run_experiment("multimodal", preset="test", seeds=2,
                        settings=["independent", "encoding-larger"], overrides=_TINY,
                        device="cpu")
    assert len(df) == 4
    paths = write_results(df, tmp_path)
    recs = json.loads((tmp_path / "results.json").read_text())
    assert isinstance(recs, list) and len(recs) == 4
    for r in recs:
        assert r["experiment"] == "multimodal"
        assert r["setting"] in ("independent", "encoding-larger")
        assert r["seed"] in (0, 1)
        for f in ("r2_linear_content", "r2_nonlinear_content", "r2_nonlinear_style",
                  "r2_nonlinear_m1", "r2_linear_style_tilde", "r2_nonlinear_m2"):
            assert isinstance(r[f], float) and r[f] <= 1.0
    assert {r["encoding_dim"] for r in recs} == {5, 10}
    md = (tmp_path / "results.md").read_text()
    assert "| independent | 2 |" in md and "±" in md
    assert (tmp_path / "results.csv").read_text().startswith("experiment,setting,seed")
    assert set(paths) == {"json", "csv", "md", "run"}

    pc = run_experiment("partial-causal", preset="test", seeds=1,
                        settings=["sphere", "convex"], overrides=_TINY, device="cpu")
    for f in ("r2_linear_coupled", "r2_nonlinear_coupled", "mcc_before_ica", "mcc_after_ica"):
        assert pc[f].between(-1.0, 1.0).all()


def test_run_experiment_rejects_unknown_names():
    from clipica.simulate import run_experiment

    with pytest.raises(InputError, match="multimodal"):
        run_experiment("nope")
    with pytest.raises(InputError, match="quick"):
        run_experiment("multimodal", preset="huge")
    with pytest.raises(InputError, match="independent"):
        run_experiment("multimodal", settings=["sphere"])
    with pytest.raises(InputError):
        run_experiment("multimodal", overrides={"stepz": 3})


@pytest.mark.parametrize("argv", [
    ["simulate", "nope", "--out", "X"],
    ["simulate", "multimodal", "--preset", "huge", "--out", "X"],
    ["simulate", "partial-causal", "--seeds", "0", "--out", "X"],
])
def test_cli_rejects_unknown_names_with_exit_2(argv, tmp_path, capsys):
    from clipica.cli import main

    argv = [a if a != "X" else str(tmp_path / "o") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cli_writes_results(tmp_path, capsys):
    from clipica.cli import main

    out = tmp_path / "pc"
    code = main(["simulate", "partial-causal", "--preset", "test", "--seeds", "1",
                 "--settings", "convex", "--steps", "10", "--device", "cpu", "--quiet",
                 "--out", str(out)])
    assert code == 0
    recs = json.loads((out / "results.json").read_text())
    assert len(recs) == 1 and recs[0]["setting"] == "convex"
    assert "mcc_before_ica" in recs[0]
    run = json.loads((out / "run.json").read_text())
    assert run["preset"]["steps"] == 10 and run["wall_seconds"] > 0


def test_custom_settings(tmp_path):
    from clipica.simulate import run_experiment

    df = run_experiment("multimodal", preset="test", seeds=[4],
                        settings={"small": {"content_dim": 2, "style_dim": 1, "m1_dim": 1,
                                            "m2_dim": 1, "p_change": 0.5, "encoding_dim": 3}},
                        overrides=_TINY, device="cpu")
    row = df.iloc[0]
    assert (row["setting"], row["seed"], row["content_dim"], row["encoding_dim"]) == ("small", 4, 2, 3)
    assert row["p_change"] == 0.5
    with pytest.raises(InputError, match="kappa_typo"):
        run_experiment("partial-causal", preset="test", settings={"x": {"kappa_typo": 3}})
    with pytest.raises(InputError, match="p_change"):
        run_experiment("multimodal", preset="test", settings={"x": {"p_change": 2.0}})


@pytest.mark.slow
def test_quick_preset_shows_the_papers_patterns():
    # the expectations of docs/identifiability.md on one seed (a few minutes)
    from clipica.simulate import run_experiment

    mm = run_experiment("multimodal", preset="quick", seeds=[0], settings=["independent"])
    assert mm["r2_nonlinear_content"].iloc[0] > 0.9
    assert mm[["r2_nonlinear_style", "r2_nonlinear_m1"]].to_numpy().max() < 0.3
    pc = run_experiment("partial-causal", preset="quick", seeds=[0],
                        settings=["sphere-independent-prior", "convex"]).set_index("setting")
    assert pc.loc["sphere-independent-prior", "r2_linear_coupled"] > 0.9
    assert pc.loc["sphere-independent-prior", "mcc_after_ica"] > 0.9
    assert (pc.loc["sphere-independent-prior", "mcc_after_ica"]
            > pc.loc["sphere-independent-prior", "mcc_before_ica"] + 0.1)
    assert pc.loc["convex", "mcc_before_ica"] > 0.9
