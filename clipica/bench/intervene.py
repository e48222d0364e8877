"""``clipica bench intervene``: ``clipica intervene`` at CelebA's size, and how it scales.

The store: ``--rows`` rows (default CelebA's 202,599) of ``--dim`` planted embeddings (64
Laplace codes mixed into 512 dimensions plus Gaussian noise, 40 binary attributes that depend
on a few codes: :func:`clipica.bench.probe.make_data`), whose images are the
``synthetic-faces`` rows of the same index, rendered on demand as any synthetic-faces store's
are. Embeddings and images are unrelated: the figures mean nothing, the costs are real. The
text view is off (``--no-text``): a planted store has no model to encode prompts with.
The decomposition: an ICA with K = 64 fitted on a seeded 20,000-row subsample.

Each command runs as a user runs it, in a fresh ``clipica`` process, timed by wall clock
and by the CPU seconds (user + sys) and peak memory of that process:

1. ``first``: the first intervention (fits and caches the attribute probes), no decoder;
2. ``second``: another component, same store and decomposition (the probes are cached);
3. ``decoder``: a third component with the decoded view, i.e. a first decoder training
   (its fixed budget: :data:`clipica.intervene.decoder.DEFAULT_PRESENTATIONS` images on at most
   :data:`clipica.intervene.decoder.DEFAULT_ROWS` rows);
4. ``first_small``: the first intervention on a store of ``rows / 10`` rows, the baseline of
   the same run: at a cost flat in N, ``first / first_small`` is near 1, not 10.

Targets (issue 14, item 3; issue 15, item 5): ``first`` under 60 s and ``decoder`` under
240 s on 2 CPU cores; ``second / first`` under 1/3; ``first`` peak memory well under the
store's image matrix (the memmap is read in chunks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HELP = "time `clipica intervene` on a CelebA-size store (first, cached, with decoder) against N/10"

STORE_KEY = {"model": "planted", "data": "clipica bench intervene"}
TARGETS = {"first_seconds": 60.0, "decoder_seconds": 240.0, "second_over_first": 1 / 3}


def add_arguments(parser) -> None:
    parser.add_argument("--rows", type=int, default=202_599, metavar="N",
                        help="store rows (default 202,599, CelebA's size)")
    parser.add_argument("--dim", type=int, default=512, metavar="D", help="embedding width (default 512)")
    parser.add_argument("--no-decoder", action="store_true", help="skip the run with a decoder")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="write the stores and outputs here and keep them (default: a temp folder)")


def write_store(path, n: int, d: int = 512, k: int = 64, attributes: int = 40, seed: int = 0,
                chunk: int = 50_000):
    """A store of ``n`` planted embeddings whose images are synthetic-faces rows (see the module
    docstring); returns the open EmbeddingStore. Memory: one chunk of rows at a time, plus the
    codes and labels (n x (k + attributes) float64)."""
    from clipica.bench.pipeline import attribute_names
    from clipica.bench.probe import make_data
    from clipica.data import open_source
    from clipica.embeddings.store import SCHEMA_VERSION, EmbeddingStore, StoreWriter

    codes, labels = make_data(n, k, attributes, seed)
    rng = np.random.default_rng(seed + 1)
    mixing = (rng.standard_normal((k, d)) / np.sqrt(d)).astype(np.float32)
    noise_sd = float(np.sqrt(0.25 * k / d))
    names = attribute_names(attributes)
    spec = f"synthetic-faces:{n}"
    source = open_source(spec)
    w = StoreWriter(path, STORE_KEY, overwrite=True)
    try:
        w.begin({"schema_version": SCHEMA_VERSION, "key": STORE_KEY, "embed_dim": d, "has_text": False,
                 "label_columns": names, "model": {"spec": "planted"},
                 "data": {"spec": spec, "fingerprint": source.fingerprint()}}, 0)
        for a in range(0, n, chunk):
            b = min(a + chunk, n)
            X = codes[a:b].astype(np.float32) @ mixing
            X += noise_sd * rng.standard_normal(X.shape, dtype=np.float32)
            rows = [{"id": f"f{i}", "source_index": i, "caption": None, "split": None,
                     "caption_truncated": False, **dict(zip(names, values, strict=True))}
                    for i, values in zip(range(a, b), labels[a:b].tolist(), strict=True)]
            w.commit(X, None, rows, errors=[], next_position=b)
        w.finalize()
    finally:
        w.close()
    return EmbeddingStore.open(path)


def _fit_ica(store, out, k: int = 64, rows: int = 20_000, seed: int = 0) -> None:
    from clipica.decompositions import ICA

    N = len(store.image)
    idx = np.sort(np.random.default_rng(seed).choice(N, min(rows, N), replace=False))
    ICA(n_components=k, random_state=seed).fit(np.asarray(store.image[idx])).save(out, overwrite=True)


def time_command(args: list[str]) -> dict:
    """Run ``python -m clipica ARGS`` in a fresh process: wall seconds, CPU seconds (user + sys
    of that process and its children) and peak resident memory (MiB)."""
    code = (
        "import resource, runpy, sys, time\n"
        "sys.argv = ['clipica'] + sys.argv[1:]\n"
        "t0 = time.perf_counter()\n"
        "try:\n"
        "    runpy.run_module('clipica', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    rc = e.code or 0\n"
        "else:\n"
        "    rc = 0\n"
        "ru = resource.getrusage(resource.RUSAGE_SELF)\n"
        "ch = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        # ru_maxrss survives fork+exec on Linux (the parent's high-water mark): VmHWM does not
        "try:\n"
        "    hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')]\n"
        "    rss = int(hwm[0].split()[1]) / 1024\n"
        "except (OSError, IndexError, ValueError):\n"
        "    rss = ru.ru_maxrss / 1024\n"
        "cpu = ru.ru_utime + ru.ru_stime + ch.ru_utime + ch.ru_stime\n"
        "print('BENCH', time.perf_counter() - t0, cpu, rss, rc, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("BENCH ")]
    if r.returncode != 0 or not line:
        raise RuntimeError(f"`clipica {' '.join(args)}` failed ({r.returncode}): {r.stderr[-800:]}")
    _, inner, cpu, rss, _ = line[-1].split()
    return {"wall_seconds": round(wall, 2), "in_process_seconds": round(float(inner), 2),
            "cpu_seconds": round(float(cpu), 2), "peak_rss_mib": round(float(rss), 1)}


def run_benchmark(rows: int = 202_599, dim: int = 512, decoder: bool = True, work=None,
                  progress=print) -> dict:
    work = Path(work or tempfile.mkdtemp(prefix="clipica-bench-intervene-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"rows": rows, "dim": dim, "k": 64, "attributes": 40, "cpus": os.cpu_count(),
                 "load_average_before": list(os.getloadavg())}
    stores = {}
    for name, n in (("large", rows), ("small", max(rows // 10, 2_000))):
        t0 = time.perf_counter()
        store = write_store(work / f"store_{name}", n, dim)
        _fit_ica(store, work / f"ica_{name}")
        stores[name] = n
        progress(f"{name} store: {n:,} x {dim} and its ICA in {time.perf_counter() - t0:.1f} s")
    base = ["intervene", "--no-text", "--quiet"]

    def iv(name: str, comp: int, *extra: str) -> dict:
        png = work / f"out_{name}" / f"component_{comp:02d}.png"
        res = time_command([*base, str(work / f"store_{name}"), "--ica", str(work / f"ica_{name}"),
                            "--component", str(comp), "--out", str(png), *extra])
        progress(f"intervene {name} component {comp} {' '.join(extra)}: {res}")
        return res

    out["first"] = iv("large", 0, "--no-decoder")
    out["second"] = iv("large", 1, "--no-decoder")
    if decoder:
        out["decoder"] = iv("large", 2)
    out["first_small"] = iv("small", 0, "--no-decoder")
    out["small_rows"] = stores["small"]
    out["store_image_mib"] = round(rows * dim * 4 / 2**20, 1)
    f, s = out["first"], out["second"]
    out["second_over_first"] = {"wall": round(s["wall_seconds"] / f["wall_seconds"], 3),
                                "cpu": round(s["cpu_seconds"] / f["cpu_seconds"], 3)}
    out["first_over_first_small"] = {
        "wall": round(f["wall_seconds"] / out["first_small"]["wall_seconds"], 3),
        "cpu": round(f["cpu_seconds"] / out["first_small"]["cpu_seconds"], 3),
        "rows_ratio": round(rows / stores["small"], 2)}
    out["targets"] = TARGETS
    out["load_average_after"] = list(os.getloadavg())
    out["work"] = str(work)
    return out


def run(args) -> int:
    import shutil

    from clipica.errors import InputError

    if args.rows < 2_000 or args.dim < 8:
        raise InputError(f"--rows must be at least 2000 and --dim at least 8, got {args.rows}, {args.dim}")
    say = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr))
    res = run_benchmark(args.rows, args.dim, decoder=not args.no_decoder, work=args.keep, progress=say)
    if args.keep is None:
        shutil.rmtree(res["work"], ignore_errors=True)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        f, s = res["first"], res["second"]
        print(f"clipica intervene on {res['rows']:,} x {res['dim']} (load average "
              f"{res['load_average_before'][0]:.1f}):")
        for key in ("first", "second", "decoder", "first_small"):
            if key in res:
                r = res[key]
                print(f"  {key:12s} {r['wall_seconds']:7.1f} s wall  {r['cpu_seconds']:7.1f} s CPU  "
                      f"{r['peak_rss_mib']:7.0f} MiB peak")
        print(f"  second / first: {s['wall_seconds'] / f['wall_seconds']:.2f} wall, "
              f"{s['cpu_seconds'] / f['cpu_seconds']:.2f} CPU (target < 0.33)")
        print(f"  first at N / first at N/10: {res['first_over_first_small']['wall']:.2f} wall, "
              f"{res['first_over_first_small']['cpu']:.2f} CPU (flat in N: near 1)")
    return 0
