"""``clipica match RUN_A RUN_B --out DIR``: the same components across seeds, models or layers."""

from __future__ import annotations

import argparse

HELP = "match the components of two runs on the images both embedded (correlation, Hungarian, blocks, PCA control)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help="run folder with store/ and a decomposition (from `clipica run`)")
    parser.add_argument("run_b", metavar="RUN_B", help="the other run folder (same images; rows joined on ids)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (match.json, pairs.csv, match.png); inside RUN_A, the report shows it")
    parser.add_argument("--decomposition", default="ica", metavar="NAME",
                        help="the decomposition folder inside each run (default ica)")
    parser.add_argument("--modality", choices=("image", "text"), default="image")
    parser.add_argument("--top", type=int, default=None, metavar="N",
                        help="average |r| over the N strongest pairs (default: the number of binary attributes)")
    parser.add_argument("--no-control", action="store_true", help="skip the PCA control")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR/match.json")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clipica.errors import ArtifactExistsError
    from clipica.match import MatchResult
    from clipica.pipeline.match import match_params, match_stage

    out = Path(args.out)
    if (out / "match.json").exists() and not args.overwrite:
        raise ArtifactExistsError(f"{out / 'match.json'} exists; pass --overwrite to replace it")
    params = match_params(decomposition=args.decomposition, modality=args.modality,
                          control=not args.no_control, top=args.top)
    result = MatchResult.from_dict(match_stage(args.run_a, args.run_b, out, params, reuse=False))
    for line in summary_lines(result):
        print(line)
    print(f"wrote {out / 'match.json'}")
    return 0


def summary_lines(result) -> list[str]:
    """The printed summary: rows, pairs, attribute twins, blocks, control."""
    s, rows = result.summary, result.rows
    out = [f"{rows['n_shared']} shared rows (A {rows['n_a']}, B {rows['n_b']}; joined by {rows['how']}); "
           f"K {result.codes.k_a} x {result.codes.k_b}"]
    line = f"{result.codes.method}: mean |r| {s['mean_abs_corr']:.3f}, top-{s['top']} mean {s['top_mean']:.3f}"
    if result.control is not None:
        c = result.control.summary
        line += f"; PCA control: mean {c['mean_abs_corr']:.3f}, top-{c['top']} mean {c['top_mean']:.3f}"
    out.append(line)
    if "attributes_min" in s:
        out.append(f"binary attributes' twins ({s['n_attributes']}): |r| min {s['attributes_min']:.3f}, "
                   f"mean {s['attributes_mean']:.3f}")
    if "n_significant_pairs" in s:
        out.append(f"{s['n_significant_pairs']} of {s['n_pairs']} pairs non-Gaussian on both sides "
                   "(the others' partners and names are noise)")
    for p in result.pairs:
        noise = "" if p.get("significant_a", True) and p.get("significant_b", True) else "  [Gaussian: noise]"
        out.append(f"  a c{p['a']:<3} b c{p['b']:<3} r {p['corr']:+.3f}  "
                   f"{p['attribute_a'] or '-'} / {p['attribute_b'] or '-'}{noise}")
    for b in result.blocks:
        cc = ", ".join(f"{v:.2f}" for v in b["canonical"])
        out.append(f"  block a {b['a']} ~ b {b['b']} ({b['partner']}): canonical correlations {cc}")
    return out
