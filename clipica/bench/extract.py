"""``clipica bench extract``: the extraction pipeline against the model's forward pass alone.

Same architecture, batch size and device, same process:

- **forward**: ``encode_image`` + ``encode_text`` on tensors preprocessed and
  tokenised before the clock starts (the ceiling: what the model alone allows);
- **pipeline**: ``clipica.extract`` on a folder of JPEGs written for the run
  (178x218 px like CelebA's aligned crops, with a ``metadata.csv`` of captions):
  DataLoader workers decode, preprocess and tokenise while the main process runs
  the forward pass and commits each batch to the store (fsync + atomic progress).

With ``--engine ray`` the pipeline is :mod:`clipica.embeddings.ray_engine` on a local Ray
(or ``--address``): read tasks decode, an actor pool runs the encoders, the driver
commits. Its figure is the steady rate (rows after the first commit over the time
they took: the actor start is excluded, a long run amortises it; the whole-run rate is
reported too), and the forward pass alone is timed inside a Ray actor shaped like one
encoder worker (its CPUs, GPUs and torch threads), times ``--workers``: the compute the
pool really gets (Ray workers run at a lower scheduling priority than the driver, which
matters on a shared machine). ``forward_all_threads_images_per_s`` gives the all-core
forward in this process, for context.

``ratio = pipeline images/s / forward images/s``; the forward figure is the mean
of one timing before and one after the pipeline run, to average out drift on a
shared machine; ``--repeat R`` alternates R pipeline runs with forward timings
and reports the median ratio. ``--memory`` also runs the pipeline in two fresh subprocesses
on ``R`` and ``4R`` rows and reports the peak RSS of each (main process; the
workers are reported separately), which should not grow with the row count.
``--busy-core`` then times one more pipeline run and the forward pass while another process
keeps one core busy, and reports busy / idle for each (:mod:`clipica.bench.busy`).
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

HELP = "time the extraction pipeline against the forward pass alone (same model, batch, device)"
TARGETS = {"ratio": 0.85, "memory_growth": 0.10, "ratio_ray": 0.8}


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="ViT-B-32", help="model spec (default ViT-B-32)")
    parser.add_argument("--pretrained", default="none", help="weights (default none: random, no download)")
    parser.add_argument("--rows", type=int, default=256, help="images in the pipeline run (default 256)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size for both (default 32)")
    parser.add_argument("--num-workers", type=int, default=None, help="decoding workers (default: cores - 1, max 4)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="pipeline runs, each bracketed by forward timings; the ratio is the median (default 1)")
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS at R and 4R rows in subprocesses")
    parser.add_argument("--memory-rows", type=int, default=128, help="R for --memory (default 128, then 512)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast smoke run: 64 rows, batch 16, 64 and 256 rows for --memory")
    parser.add_argument("--out", help="folder to write bench_extract.json into")
    parser.add_argument("--busy-core", action="store_true",
                        help="then run the pipeline and the forward pass again while another process keeps one "
                             "core busy, and report busy / idle (local engine)")
    parser.add_argument("--engine", default="local", choices=("local", "ray"),
                        help="pipeline engine (default local; ray: Ray Data, see clipica extract --engine)")
    parser.add_argument("--address", help="ray: cluster address (default: a local Ray on this machine)")
    parser.add_argument("--workers", type=int, default=None, help="ray: encoder actors (default 1 on CPU)")
    parser.add_argument("--cpus-per-worker", type=float, default=None, help="ray: CPUs per encoder actor (default 1)")
    parser.add_argument("--gpus-per-worker", type=float, default=None, help="ray: GPUs per encoder actor")


def write_jpeg_folder(root: Path, n: int, seed: int = 0, size=(178, 218)) -> Path:
    """``n`` smooth random JPEGs (CelebA-sized) + metadata.csv with captions; deterministic."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    lines = ["file_name,caption"]
    for i in range(n):
        # low-frequency colour field upsampled: compresses like a photo, not like noise
        small = rng.integers(0, 256, (7, 6, 3), dtype=np.uint8)
        img = Image.fromarray(small, "RGB").resize((w, h), Image.BICUBIC)
        name = f"{i:06d}.jpg"
        img.save(root / name, quality=90)
        lines.append(f"{name},a photo of face number {i} with a colourful background")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def _time_forward(encoder, pixels, tokens, n_batches: int) -> float:
    """images/s of encode_image + encode_text on ready tensors (n_batches batches)."""
    import torch

    from clipica.models.base import to_device

    dev = encoder.device
    pixels = pixels.to(dev)
    tokens = to_device(tokens, dev)
    with torch.inference_mode():
        encoder.encode_image(pixels)  # warm-up
        encoder.encode_text(tokens)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n_batches):
            encoder.encode_image(pixels).float().cpu()
            encoder.encode_text(tokens).float().cpu()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        sec = time.perf_counter() - t0
    return n_batches * pixels.shape[0] / sec


_CHILD = r"""
import json, resource, sys, time
import clipica
a = json.loads(sys.argv[1])
t0 = time.perf_counter()
s = clipica.extract(model=a["model"], pretrained=a["pretrained"], data=a["data"], out=a["out"],
                    batch_size=a["batch_size"], device=a["device"], num_workers=a["num_workers"], progress=False)
ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rc = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rows": len(s.rows), "peak_rss_kb": ru, "workers_peak_rss_kb": rc,
                  "images_per_s": s.manifest["last_run"]["images_per_s"]}))
"""


def _memory_run(tmp: Path, rows: int, args) -> dict:
    folder = write_jpeg_folder(tmp / f"mem{rows}", rows, seed=1)
    payload = {"model": args.model, "pretrained": args.pretrained, "data": f"folder:{folder}",
               "out": str(tmp / f"mem{rows}.store"), "batch_size": args.batch_size, "device": args.device,
               "num_workers": args.num_workers}
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(payload)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory run on {rows} rows failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args) -> int:
    import torch

    import clipica
    from clipica.embeddings.extract import default_num_workers
    from clipica.models import load_encoder

    if args.quick:
        args.rows, args.batch_size, args.memory_rows = 64, 16, 64
    engine = getattr(args, "engine", "local")
    if engine == "ray":
        return _run_ray(args)
    workers = default_num_workers() if args.num_workers is None else args.num_workers
    args.num_workers = workers
    log = (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    result: dict = {
        "model": args.model, "pretrained": args.pretrained, "rows": args.rows, "batch_size": args.batch_size,
        "num_workers": workers, "device": args.device, "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "note": "timings share the machine with other work; the ratio (same run) is the figure to read",
    }
    with tempfile.TemporaryDirectory(prefix="clipica-bench-extract-") as tmpname:
        tmp = Path(tmpname)
        log(f"writing {args.rows} JPEGs ...")
        folder = write_jpeg_folder(tmp / "jpegs", args.rows)
        encoder = load_encoder(args.model, pretrained=args.pretrained, device=args.device)
        result["image_size"] = encoder.image_size
        result["embed_dim"] = encoder.embed_dim
        from clipica.data import open_source

        src = open_source(f"folder:{folder}", limit=args.batch_size)
        rows = [src[i] for i in range(len(src))]
        pixels = torch.stack([encoder.preprocess(r.image) for r in rows])
        tokens, _ = encoder.tokenize([r.caption for r in rows])
        n_batches = max(1, args.rows // args.batch_size)
        log(f"forward pass alone: {n_batches} batches of {args.batch_size} ...")
        fwd_prev = _time_forward(encoder, pixels, tokens, n_batches)
        rounds = []
        for r in range(args.repeat):
            log(f"  {fwd_prev:.2f} images/s; pipeline run {r + 1}/{args.repeat} "
                f"(folder -> {workers} workers -> forward -> store) ...")
            store = clipica.extract(model=args.model, pretrained=args.pretrained, data=f"folder:{folder}",
                                    out=tmp / f"store{r}", batch_size=args.batch_size, device=args.device,
                                    num_workers=workers, progress=not args.json)
            pipe = float(store.manifest["last_run"]["images_per_s"])
            log(f"  {pipe:.2f} images/s; forward pass alone again ...")
            fwd_next = _time_forward(encoder, pixels, tokens, n_batches)
            fwd = (fwd_prev + fwd_next) / 2  # the forward figure bracketing this pipeline run
            rounds.append({"forward_before_after": [round(fwd_prev, 3), round(fwd_next, 3)],
                           "forward_images_per_s": round(fwd, 3), "pipeline_images_per_s": round(pipe, 3),
                           "pipeline_seconds": store.manifest["last_run"]["seconds"], "ratio": round(pipe / fwd, 4)})
            fwd_prev = fwd_next
        result.update(
            forward_images_per_s=float(np.median([x["forward_images_per_s"] for x in rounds])),
            pipeline_images_per_s=float(np.median([x["pipeline_images_per_s"] for x in rounds])),
            ratio=float(np.median([x["ratio"] for x in rounds])),
            ratio_statistic=f"median over {len(rounds)} round(s), each pipeline run bracketed by forward timings",
            rounds=rounds,
            target_ratio=TARGETS["ratio"],
        )
        if getattr(args, "busy_core", False):
            result["busy_core_slowdown"] = _busy_core_round(args, encoder, pixels, tokens, n_batches, folder, tmp,
                                                            workers, rounds, log)
        del encoder
        if args.memory:
            small, large = args.memory_rows, 4 * args.memory_rows
            log(f"peak memory: subprocess runs on {small} and {large} rows ...")
            a, b = _memory_run(tmp, small, args), _memory_run(tmp, large, args)
            growth = b["peak_rss_kb"] / a["peak_rss_kb"] - 1
            result["memory"] = {
                "rows": [small, large],
                "peak_rss_mb": [round(a["peak_rss_kb"] / 1024, 1), round(b["peak_rss_kb"] / 1024, 1)],
                "workers_peak_rss_mb": [round(a["workers_peak_rss_kb"] / 1024, 1),
                                        round(b["workers_peak_rss_kb"] / 1024, 1)],
                "growth": round(growth, 4),
                "target_growth": TARGETS["memory_growth"],
            }
    if args.out:
        from clipica._atomic import atomic_write_json

        atomic_write_json(Path(args.out) / "bench_extract.json", result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"model {args.model} ({args.pretrained}), {encoder_size(result)}, batch {args.batch_size}, "
              f"{workers} workers, {result['torch_threads']} torch threads, device {args.device}")
        print(f"forward alone : {result['forward_images_per_s']:.1f} images/s")
        print(f"full pipeline : {result['pipeline_images_per_s']:.1f} images/s")
        print(f"ratio         : {result['ratio']:.3f}  (target >= {TARGETS['ratio']})")
        if "busy_core_slowdown" in result:
            b = result["busy_core_slowdown"]
            print(f"one core busy : pipeline {b['pipeline']['slowdown']:.2f}x, forward {b['forward']['slowdown']:.2f}x "
                  f"its idle time (target <= {b['target_slowdown']}x)")
        if "memory" in result:
            m = result["memory"]
            print(f"peak RSS      : {m['peak_rss_mb'][0]} MB at {m['rows'][0]} rows, {m['peak_rss_mb'][1]} MB at "
                  f"{m['rows'][1]} rows (growth {100 * m['growth']:.1f}%, target <= {100 * TARGETS['memory_growth']:.0f}%)")
    return 0


def _busy_core_round(args, encoder, pixels, tokens, n_batches, folder, tmp, workers, rounds, log) -> dict:
    """One more pipeline run and forward timing while another process keeps one core busy:
    busy / idle seconds of each (:mod:`clipica.bench.busy`)."""
    import clipica
    from clipica.bench.busy import TARGET_SLOWDOWN, BusyCore, slowdown

    log("pipeline and forward again, one core kept busy by another process ...")
    with BusyCore():
        store = clipica.extract(model=args.model, pretrained=args.pretrained, data=f"folder:{folder}",
                                out=tmp / "store_busy", batch_size=args.batch_size, device=args.device,
                                num_workers=workers, progress=False)
        fwd = _time_forward(encoder, pixels, tokens, n_batches)
    images = n_batches * pixels.shape[0]
    idle_fwd = float(np.median([x["forward_images_per_s"] for x in rounds]))
    out = {"pipeline": slowdown(float(np.median([x["pipeline_seconds"] for x in rounds])),
                                float(store.manifest["last_run"]["seconds"])),
           "forward": slowdown(images / idle_fwd, images / fwd),
           "target_slowdown": TARGET_SLOWDOWN,
           "how": "a second process spins one core (while True: pass) during the busy run"}
    out["within_target"] = out["pipeline"]["within_target"] and out["forward"]["within_target"]
    return out


def encoder_size(result: dict) -> str:
    return f"{result.get('image_size')} px, {result.get('embed_dim')}-d"


def _time_decode(folder: Path, encoder, n: int) -> float:
    """images/s of the pipeline's per-row work (read, decode, preprocess) on one core."""
    import torch

    from clipica.data import open_source
    from clipica.embeddings.batches import RowDataset

    rows = RowDataset(open_source(f"folder:{folder}", limit=n), encoder, True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows[0]  # warm-up (imports, first file open)
        t0 = time.perf_counter()
        for i in range(len(rows.source)):
            rows[i]
        return len(rows.source) / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)


class _ForwardTimer:
    """A Ray actor shaped like one encoder worker (same CPUs, GPUs, threads, process type) timing the
    forward pass alone, so that the pipeline is compared with the compute its workers really get."""

    def __init__(self, spec, pretrained, device, threads):
        import torch

        from clipica.models import load_encoder

        if device == "cpu":
            torch.set_num_threads(threads)
        self.encoder = load_encoder(spec, pretrained=pretrained, device=device)

    def images_per_s(self, pixels, tokens, n_batches: int) -> float:
        return _time_forward(self.encoder, pixels, tokens, n_batches)


def _forward_in_worker(engine, args, pixels, tokens, n_batches: int) -> float:
    import ray

    before = ray.available_resources()
    actor = ray.remote(_ForwardTimer).options(
        num_cpus=engine.cpus_per_worker, num_gpus=engine.gpus_per_worker or 0
    ).remote(args.model, args.pretrained, engine.device, max(1, int(engine.cpus_per_worker)))
    try:
        return float(ray.get(actor.images_per_s.remote(pixels, tokens, n_batches)))
    finally:
        ray.kill(actor)  # frees its CPUs/GPUs for the pipeline's own workers ...
        deadline = time.time() + 60
        while time.time() < deadline:  # ... asynchronously: wait until they are back
            free = ray.available_resources()
            if all(free.get(k, 0) >= before.get(k, 0) for k in ("CPU", "GPU")):
                break
            time.sleep(0.2)


def _run_ray(args) -> int:
    """``--engine ray``: the Ray pipeline's steady rate against the pool's forward compute, same run."""
    import torch

    import clipica
    from clipica.data import open_source
    from clipica.embeddings.ray_engine import RayEngine
    from clipica.models import load_encoder

    log = (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    engine = RayEngine(address=args.address, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                       cpus_per_worker=args.cpus_per_worker, device=args.device)
    engine.connect()  # one Ray for every round (each round still starts its own actor pool)
    threads = max(1, int(engine.cpus_per_worker))
    all_threads = torch.get_num_threads()
    result: dict = {
        "engine": "ray", "model": args.model, "pretrained": args.pretrained, "rows": args.rows,
        "batch_size": args.batch_size, "device": engine.device, "workers": engine.workers,
        "cpus_per_worker": engine.cpus_per_worker, "gpus_per_worker": engine.gpus_per_worker,
        "cluster": engine.cluster, "forward_threads": threads * engine.workers,
        "cpu_count": os.cpu_count(),
        "note": "timings share the machine with other work; the ratio (same run) is the figure to read",
    }
    try:
        with tempfile.TemporaryDirectory(prefix="clipica-bench-extract-ray-") as tmpname:
            tmp = Path(tmpname)
            log(f"writing {args.rows} JPEGs ...")
            folder = write_jpeg_folder(tmp / "jpegs", args.rows)
            encoder = load_encoder(args.model, pretrained=args.pretrained, device=engine.device)
            result["image_size"], result["embed_dim"] = encoder.image_size, encoder.embed_dim
            src = open_source(f"folder:{folder}", limit=args.batch_size)
            rows = [src[i] for i in range(len(src))]
            pixels = torch.stack([encoder.preprocess(r.image) for r in rows])
            tokens, _ = encoder.tokenize([r.caption for r in rows])
            n_batches = max(1, args.rows // args.batch_size)

            def forward(n_threads):
                torch.set_num_threads(n_threads)
                try:
                    return _time_forward(encoder, pixels, tokens, n_batches)
                finally:
                    torch.set_num_threads(all_threads)

            def pool_forward():
                return engine.workers * _forward_in_worker(engine, args, pixels, tokens, n_batches)

            log(f"forward pass alone in one Ray worker like the pipeline's ({threads} thread(s), "
                f"{engine.gpus_per_worker:g} GPU) x {engine.workers}: {n_batches} batches of {args.batch_size} ...")
            fwd_prev = pool_forward()
            rounds = []
            for r in range(args.repeat):
                log(f"  {fwd_prev:.2f} images/s; Ray pipeline run {r + 1}/{args.repeat} "
                    f"(read tasks -> {engine.workers} encoder actor(s) -> driver commits) ...")
                store = clipica.extract(model=args.model, pretrained=args.pretrained, data=f"folder:{folder}",
                                        out=tmp / f"store{r}", batch_size=args.batch_size, device=args.device,
                                        progress=not args.json,
                                        engine=RayEngine(address=args.address, workers=engine.workers,
                                                         cpus_per_worker=engine.cpus_per_worker,
                                                         gpus_per_worker=engine.gpus_per_worker,
                                                         device=args.device))
                last = store.manifest["last_run"]
                pipe = float(last["steady_images_per_s"] or last["images_per_s"])
                log(f"  {pipe:.2f} images/s steady ({last['images_per_s']:.2f} with the actor start); "
                    "forward pass alone again ...")
                fwd_next = pool_forward()
                fwd = (fwd_prev + fwd_next) / 2
                rounds.append({"forward_before_after": [round(fwd_prev, 3), round(fwd_next, 3)],
                               "forward_images_per_s": round(fwd, 3), "pipeline_images_per_s": round(pipe, 3),
                               "pipeline_whole_run_images_per_s": last["images_per_s"],
                               "pipeline_seconds": last["seconds"], "ratio": round(pipe / fwd, 4)})
                fwd_prev = fwd_next
            log(f"forward pass alone on all {all_threads} threads (context) ...")
            result["forward_all_threads_images_per_s"] = round(forward(all_threads), 3)
            result["decode_images_per_s_per_core"] = round(_time_decode(folder, encoder, args.batch_size), 3)
    finally:
        engine.shutdown()
    _summarise_ray(result, rounds, engine.workers)
    if args.out:
        from clipica._atomic import atomic_write_json

        atomic_write_json(Path(args.out) / "bench_extract.json", result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_ray(result, args, engine)
    return 0


def _summarise_ray(result: dict, rounds: list[dict], workers: int) -> None:
    """Medians over the rounds, the ratio, and the decode cores one encoder worker needs."""
    result.update(
        forward_images_per_s=float(np.median([x["forward_images_per_s"] for x in rounds])),
        pipeline_images_per_s=float(np.median([x["pipeline_images_per_s"] for x in rounds])),
        ratio=float(np.median([x["ratio"] for x in rounds])),
        ratio_statistic=f"median over {len(rounds)} round(s), each pipeline run bracketed by forward timings",
        rounds=rounds,
        target_ratio=TARGETS["ratio_ray"],
    )
    # sizing (README "Scaling out"): CPUs that keep one encoder worker fed = its forward rate / d
    result["decode_cores_per_worker"] = round(
        result["forward_images_per_s"] / workers / result["decode_images_per_s_per_core"], 3)
    result["ratio_vs_all_threads"] = round(result["pipeline_images_per_s"] / result["forward_all_threads_images_per_s"], 4)


def _print_ray(result: dict, args, engine) -> None:
    print(f"model {args.model} ({args.pretrained}), {encoder_size(result)}, batch {args.batch_size}, "
          f"Ray: {engine.workers} worker(s) x {engine.cpus_per_worker:g} CPU, {engine.gpus_per_worker:g} GPU, "
          f"cluster {result['cluster']}")
    print(f"forward alone : {result['forward_images_per_s']:.1f} images/s on {result['forward_threads']} thread(s)")
    print(f"Ray pipeline  : {result['pipeline_images_per_s']:.1f} images/s (steady)")
    print(f"ratio         : {result['ratio']:.3f}  (target >= {TARGETS['ratio_ray']})")
    print(f"all-core forward {result['forward_all_threads_images_per_s']:.1f} images/s "
          f"(ratio {result['ratio_vs_all_threads']:.3f}, for context)")
    print(f"decoding      : {result['decode_images_per_s_per_core']:.1f} images/s per core "
          f"({result['decode_cores_per_worker']:.2f} cores keep one encoder worker fed)")
