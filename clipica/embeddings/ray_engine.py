"""Extraction on Ray Data (``clipica extract --engine ray``): the same store, resume and bad-row policy.

The pipeline, for the rows ``[pos, stop)`` still to embed::

    read tasks (one per batch window, any node)     decode + preprocess + tokenise: the local
        │  {"start", collated batch}                engine's own RowDataset/Collate, so the
        ▼                                           same safe decoding and the same error reasons
    map_batches(_EncoderActor, ActorPoolStrategy)   one encoder per actor on its GPU (or CPUs);
        │  {"start", commit arguments}              embed_batch(), shared with the local loop
        ▼
    driver: iter_rows() in source order  ──►  StoreWriter.commit() per window  ──►  finalize

Batch windows are the local engine's (``[pos + k*B, pos + (k+1)*B)``), so both
engines run the same forward passes on the same rows and write the same store;
either can resume the other's unfinished store. Only the driver writes, in
source order (``preserve_order`` plus a reorder buffer), through clipica's own
commit protocol (data fsynced, then ``progress.json`` replaced atomically), so a
``kill -9`` of the driver loses at most the windows in flight and a rerun
skips every committed row. Ray Data's own checkpointing is not used: it writes
unordered files and would not keep the store's crash guarantees.

Worker failures are Ray's job: read tasks are retried on worker death
(``max_retries=-1``, Ray Data's default for its tasks) and encoder actors are
restarted with their in-flight batches resubmitted (``max_restarts=-1``,
``max_task_retries=-1``, which Ray Data sets for actor pools unless told
otherwise: ``ActorPoolMapOperator``, Ray 2.60). A window is a pure function of its positions, so a retried
one gives the same bytes.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time

from clipica.errors import ClipicaError, ClusterError, DependencyError, InputError

#: what to install for this engine (the one line a user sees without Ray)
RAY_HINT = "pip install 'clipica[ray]'"
#: seconds to wait for ``--address`` to answer as a Ray cluster (TCP and handshake) before giving up
CONNECT_TIMEOUT_S = 10.0


def import_ray():
    """``ray`` (with Ray Data), or a DependencyError naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401 - the pipeline needs Ray Data, not only Ray core
    except ImportError:
        raise DependencyError(f"--engine ray needs Ray Data, which is not installed: {RAY_HINT}") from None
    return ray


def _positive(name: str, value, kind=float, allow_zero: bool = False):
    if value is None:
        return None
    try:
        v = kind(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if kind is int and v != value:
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if v < 0 or (v == 0 and not allow_zero) or not math.isfinite(v):
        raise InputError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return v


#: a client's HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5)
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
#: set to 1 to see Ray's own log lines (its C++ core) while clipica joins a cluster
RAY_LOGS_ENV = "CLIPICA_RAY_LOGS"


def probe_ray_address(address: str, hostport: tuple[str, int], timeout: float) -> None:
    """Raise ClusterError (one line) unless something at ``hostport`` answers as a Ray head does,
    all within ``timeout`` seconds: a TCP connection, then an HTTP/2 handshake (Ray's GCS and its
    client server are gRPC servers, which answer a client preface with their SETTINGS frame).

    Checking the TCP connection alone let a listening port that is not Ray hang ``ray.init``
    for minutes; Ray's own connection retries are not bounded by anything clipica can set.
    """
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection(hostport, timeout=timeout) as sock:
            sock.sendall(_H2_PREFACE)
            head = b""
            while len(head) < 9:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                chunk = sock.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
    except TimeoutError:
        raise ClusterError(
            f"--address {address} accepted a connection but did not answer as a Ray cluster within "
            f"{timeout:g} s; pass the address `ray start --head` prints (its GCS port, 6379 by default)"
        ) from None
    except OSError as exc:
        raise ClusterError(
            f"cannot reach a Ray cluster at --address {address} ({exc.strerror or exc}); "
            "start one with `ray start --head` and pass the address it prints"
        ) from None
    if len(head) < 9 or head[3] != 0x04:  # not an HTTP/2 SETTINGS frame: not a gRPC server
        raise ClusterError(
            f"--address {address} answered, but not as a Ray cluster (no gRPC handshake); pass the "
            "address `ray start --head` prints (its GCS port, 6379 by default)")


class QuietRayLogs:
    """Send what Ray's C++ core writes to this process's stderr (file descriptor 2) to a log file
    while it joins a cluster, so that a failed join is one line, not twenty; after a failure the
    file is kept when Ray wrote anything (:meth:`where` names it). ``CLIPICA_RAY_LOGS=1`` leaves
    the terminal alone."""

    def __init__(self):
        self._saved, self.path = None, None

    def where(self) -> str:
        """`` (Ray's log: PATH)`` when a kept log holds what Ray wrote, else ``""``."""
        return f" (Ray's log: {self.path})" if self.path and os.path.exists(self.path) else ""

    def __enter__(self):
        self._saved = None
        if os.environ.get(RAY_LOGS_ENV, "") not in ("", "0"):
            return self
        import tempfile

        sys.stderr.flush()
        fd, self.path = tempfile.mkstemp(prefix="clipica-ray-", suffix=".log")
        self._saved = os.dup(2)
        os.dup2(fd, 2)
        os.close(fd)
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return False
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        if exc[0] is None or os.path.getsize(self.path) == 0:
            os.unlink(self.path)
        return False


def _split_address(address: str) -> tuple[str, int] | None:
    """'host:port' or 'ray://host:port' -> (host, port); 'auto'/'local' -> None (nothing to probe)."""
    if address in ("auto", "local"):
        return None
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(
            f"--address {address!r} is not a Ray address; expected HOST:PORT (what `ray start --head` "
            "prints), ray://HOST:PORT or auto"
        )
    return host.strip("[]"), int(port)


def engine_from_options(engine: str = "local", *, address=None, workers=None, gpus_per_worker=None,
                        cpus_per_worker=None, device: str = "cpu"):
    """The ``engine=`` of :func:`clipica.extract` from the command line's flat options.

    "local" (refusing Ray-only options given with it) or a :class:`RayEngine` built from them.
    """
    if engine != "ray":
        given = [f"--{n.replace('_', '-')}" for n, v in (("address", address), ("workers", workers),
                 ("gpus_per_worker", gpus_per_worker), ("cpus_per_worker", cpus_per_worker)) if v is not None]
        if given:
            raise InputError(f"{', '.join(given)} only apply to --engine ray")
        return engine
    return RayEngine(address=address, workers=workers, gpus_per_worker=gpus_per_worker,
                     cpus_per_worker=cpus_per_worker, device=device)


class RayEngine:
    """Where and how wide the Ray pipeline runs; created by :func:`clipica.extract`.

    Parameters
    ----------
    address : ``HOST:PORT`` of a running cluster's head (``ray start --head``), ``ray://HOST:PORT``
        (Ray Client) or ``auto``; None joins the Ray already initialised in this process, else
        whatever ``ray.init()`` finds (``RAY_ADDRESS``, a local ``ray start``), else starts a local one.
    workers : encoder actors (default: cluster GPUs // gpus_per_worker on GPUs, else 1).
    gpus_per_worker : GPUs per actor (default 1 when ``device`` is cuda, or auto on a cluster
        with GPUs; else 0). Any value > 0 runs the encoders on ``cuda``.
    cpus_per_worker : CPUs Ray reserves per actor (default 1); on CPU also its torch threads.
        The rest of the cluster's CPUs decode.
    device : the ``--device`` given to extract (cpu, cuda, cuda:N, auto).
    """

    def __init__(self, *, address=None, workers=None, gpus_per_worker=None, cpus_per_worker=None, device="cpu"):
        self.address = None if address in (None, "") else str(address)
        if self.address is not None:
            _split_address(self.address)  # reject a malformed address before anything else
        self.workers = _positive("--workers", workers, int)
        self.gpus_per_worker = _positive("--gpus-per-worker", gpus_per_worker, float, allow_zero=True)
        self.cpus_per_worker = _positive("--cpus-per-worker", cpus_per_worker, float)
        self.requested_device = str(device or "cpu").strip().lower()
        if not (self.requested_device in ("cpu", "auto") or self.requested_device.startswith("cuda")):
            raise InputError(f"--device {device!r} is not a device; expected cpu, cuda, cuda:N or auto")
        self.device = "cpu"
        self.cluster: dict = {}
        self._started = False
        import_ray()

    # -- the cluster -----------------------------------------------------------------
    def connect(self) -> None:
        """Join (or start) Ray, then fix workers/GPUs/CPUs against what the cluster has.

        Raises ClusterError within about CONNECT_TIMEOUT_S when ``address`` cannot be
        reached, and when the cluster lacks the GPUs or CPUs asked for (a pool that can
        never be scheduled would otherwise wait forever).
        """
        import logging

        ray = import_ray()
        if ray.is_initialized():
            current = ray.get_runtime_context().gcs_address
            if self.address not in (None, "auto", current):
                raise InputError(
                    f"Ray is already initialised in this process (cluster {current}); leave --address "
                    f"out to use it, or call ray.shutdown() before joining {self.address}"
                )
        else:
            hostport = _split_address(self.address) if self.address else None
            if hostport is not None:
                probe_ray_address(self.address, hostport, CONNECT_TIMEOUT_S)
            quiet = QuietRayLogs()
            try:
                with quiet:
                    ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                             logging_level=logging.WARNING, configure_logging=True)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ClusterError(f"could not join Ray at --address {self.address or 'auto'}: {first}"
                                   f"{quiet.where()}") from None
            self._started = True
        res = ray.cluster_resources()
        cpus, gpus = float(res.get("CPU", 0)), float(res.get("GPU", 0))
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        g = self.gpus_per_worker
        if g is None:
            g = 1.0 if self.requested_device.startswith("cuda") or (self.requested_device == "auto" and gpus) else 0.0
        n = self.workers if self.workers is not None else (max(1, int(gpus // g)) if g else 1)
        c = self.cpus_per_worker if self.cpus_per_worker is not None else 1.0
        if g and n * g > gpus:
            raise ClusterError(
                f"{n} workers x {g:g} GPUs need {n * g:g} GPUs; the Ray cluster has {gpus:g} "
                "(lower --workers or --gpus-per-worker, or add GPU nodes)"
            )
        if n * c + 1 > cpus:
            raise ClusterError(
                f"{n} workers x {c:g} CPUs leave no CPU for decoding; the Ray cluster has {cpus:g} CPUs "
                "(lower --workers or --cpus-per-worker)"
            )
        self.workers, self.gpus_per_worker, self.cpus_per_worker = int(n), float(g), float(c)
        self.device = "cuda" if g else "cpu"
        self.cluster = {"nodes": nodes, "cpus": cpus, "gpus": gpus}

    def describe(self) -> dict:
        """The manifest's ``engine`` record: Ray version, address, pool shape, cluster size."""
        import ray

        return {"name": "ray", "ray_version": ray.__version__, "address": self.address or "local",
                "workers": self.workers, "gpus_per_worker": self.gpus_per_worker,
                "cpus_per_worker": self.cpus_per_worker, "cluster": dict(self.cluster)}

    def shutdown(self) -> None:
        """Stop Ray only if :meth:`connect` started or joined it for this call."""
        if self._started:
            import ray

            with QuietRayLogs():  # its shutdown lines too
                ray.shutdown()
            self._started = False

    # -- the pipeline ---------------------------------------------------------------------
    def run(self, writer, source, view, *, progress: bool, **kw):
        """Embed source positions ``[pos, stop)`` into ``writer``'s store; returns the finished store.
        Quiet (``progress=False``), what Ray's workers and Ray Data log goes to a file, not the
        terminal (:class:`QuietRayLogs`)."""
        import contextlib

        with contextlib.nullcontext() if progress else QuietRayLogs():
            return self._pipeline(writer, source, view, progress=progress, **kw)

    def _pipeline(self, writer, source, view, *, positions, batch_size: int, has_text: bool, on_error: str,
                  normalize: bool, progress: bool, label_columns: list[str], encoder_args: dict):
        import logging

        import ray
        from ray.data import ActorPoolStrategy, DataContext

        from clipica._version import __version__
        from clipica.embeddings.batches import bad_row_error

        pos, stop = positions
        windows = [(a, min(a + batch_size, stop)) for a in range(pos, stop, batch_size)]
        pause = float(os.environ.get("CLIPICA_TEST_COMMIT_PAUSE", "0") or 0)  # test hook (resume tests)
        encode_pause = float(os.environ.get("CLIPICA_TEST_RAY_ENCODE_PAUSE", "0") or 0)  # test hook (worker kill)

        from tqdm.auto import tqdm

        start = int(writer.manifest["positions"][0])
        bar = tqdm(total=stop - start, initial=pos - start, unit="img", desc="extract (ray)",
                   disable=not progress, dynamic_ncols=True, smoothing=0.1)
        ctx = DataContext.get_current()
        saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
        data_log = logging.getLogger("ray.data")
        saved_level = data_log.level
        t0 = time.perf_counter()
        done = 0
        first = t_last = None
        try:
            if windows:
                ctx.execution_options.preserve_order = True  # blocks leave in source order
                ctx.enable_progress_bars = False  # our own bar counts committed rows
                data_log.setLevel(logging.WARNING)
                decoder = ray.put(_WindowDecoder(source, view, has_text))  # shipped once, not per task
                ds = ray.data.read_datasource(_WindowsDatasource(windows, decoder),
                                              override_num_blocks=len(windows))
                ds = ds.map_batches(
                    _EncoderActor,
                    batch_size=1,
                    compute=ActorPoolStrategy(size=self.workers),
                    num_gpus=self.gpus_per_worker or None,
                    num_cpus=self.cpus_per_worker,
                    fn_constructor_kwargs={
                        **encoder_args, "device": self.device, "threads": max(1, int(self.cpus_per_worker)),
                        "has_text": has_text, "normalize": normalize, "label_columns": label_columns,
                        "version": __version__, "pause": encode_pause,
                    },
                )
                pending: dict[int, dict] = {}
                expected = pos
                try:
                    for row in ds.iter_rows():
                        pending[int(row["start"])] = row["result"].value
                        while expected in pending:  # commit strictly in source order
                            res = pending.pop(expected)
                            if res["errors"] and on_error == "fail":
                                raise bad_row_error(res["errors"][0], writer.progress["n_rows"])
                            n = res["next_position"] - expected
                            writer.commit(**res, _pause=pause)
                            expected = res["next_position"]
                            done += n
                            t_last = time.perf_counter()
                            if first is None:  # the steady rate starts after the pipeline has filled
                                first = (done, t_last)
                            bar.update(n)
                            if res["errors"] and progress:
                                bar.set_postfix(errors=writer.progress["n_errors"])
                except ClipicaError:
                    raise
                except Exception as exc:  # a user error raised inside a task comes back wrapped
                    user = _clipica_cause(exc)
                    if user is not None:
                        raise user from None
                    raise
                if expected != stop:
                    raise ClusterError(f"the Ray pipeline ended at position {expected}, before {stop}; rerun to resume")
        finally:
            ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
            data_log.setLevel(saved_level)
            bar.close()
            writer.close_files()  # the lock stays held through finalize
        seconds = time.perf_counter() - t0
        rate = done / seconds if seconds > 0 else 0.0
        if progress and done:
            sys.stderr.write(f"clipica extract: {done} rows this run on Ray ({self.workers} workers), "
                             f"{rate:.1f} images/s\n")
        # steady: windows after the first commit over the time they took, i.e. without the
        # actor start (process, imports, model load) that a long run amortises
        steady = None
        if first is not None and done > first[0] and t_last > first[1]:
            steady = round((done - first[0]) / (t_last - first[1]), 3)
        last_run = {"positions": done, "seconds": round(seconds, 4), "images_per_s": round(rate, 3),
                    "steady_images_per_s": steady, "engine": "ray", "workers": self.workers,
                    "device": self.device}
        return writer.finalize({"last_run": last_run})


def _clipica_cause(exc: BaseException) -> ClipicaError | None:
    """The ClipicaError a Ray task raised, found in the wrapping exception's chain."""
    seen = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ClipicaError):
            return e
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]
    return None


class _Payload:
    """Carries one window's Python objects through a Ray Data block untouched.

    A plain dict would be converted to an Arrow struct (lists become arrays, None
    values change type); an opaque object is kept as a pickled Python object.
    """

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class _WindowDecoder:
    """Positions ``[a, b)`` -> one collated batch, exactly as a local DataLoader worker builds it."""

    def __init__(self, source, view, has_text: bool):
        self.source = source
        self.view = view
        self.has_text = has_text

    def __call__(self, a: int, b: int) -> dict:
        from clipica.embeddings.batches import Collate, RowDataset

        rows = RowDataset(self.source, self.view, self.has_text)
        return Collate(self.view, self.has_text)([rows[p] for p in range(a, b)])


_DECODERS: dict[str, _WindowDecoder] = {}  # per worker process: the decoder object, fetched once


def _read_window(decoder_ref, a: int, b: int):
    import numpy as np
    import ray
    from ray.data.block import BlockAccessor

    key = decoder_ref.hex()
    if key not in _DECODERS:
        _DECODERS.clear()
        _DECODERS[key] = ray.get(decoder_ref)
    batch = _DECODERS[key](a, b)
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(batch)
    return [BlockAccessor.batch_to_block({"start": np.array([a], dtype=np.int64), "batch": payload})]


def _windows_datasource_class():
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class WindowsDatasource(Datasource):
        """One read task per batch window, whatever parallelism Ray suggests (windows are the unit of commit)."""

        def __init__(self, windows, decoder_ref):
            super().__init__()
            self.windows = windows
            self.decoder_ref = decoder_ref

        def estimate_inmemory_data_size(self):
            return None

        def get_name(self) -> str:
            return "ClipicaDecode"

        def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
            import functools

            return [
                ReadTask(functools.partial(_read_window, self.decoder_ref, a, b),
                         BlockMetadata(num_rows=1, size_bytes=None, exec_stats=None, input_files=None))
                for a, b in self.windows
            ]

    return WindowsDatasource


def _WindowsDatasource(windows, decoder_ref):  # noqa: N802 - a class built on first use (ray imported lazily)
    return _windows_datasource_class()(windows, decoder_ref)


class _EncoderActor:
    """One encoder on its device; a window's collated batch -> the arguments of ``StoreWriter.commit``."""

    def __init__(self, spec, pretrained, precision, device, threads, has_text, normalize, label_columns,
                 version, pause=0.0, preprocess="original", layer="final"):
        import torch

        from clipica._version import __version__
        from clipica.models import load_encoder

        if version != __version__:
            raise ClusterError(f"clipica {__version__} on a Ray worker, {version} on the driver; "
                               "install the same clipica on every node")
        if device == "cpu":
            torch.set_num_threads(threads)
        # pixels and tokens come from the driver; the actor's preprocessing matches it anyway
        self.encoder = load_encoder(spec, pretrained=pretrained, device=device, precision=precision,
                                    preprocess=preprocess, layer=layer)
        self.kw = {"has_text": has_text, "normalize": normalize, "precision": precision,
                   "label_columns": label_columns}
        self.pause = pause

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        from clipica.embeddings.batches import embed_batch

        out = np.empty(len(batch["start"]), dtype=object)
        for i, p in enumerate(batch["batch"]):
            if self.pause:
                time.sleep(self.pause)
            out[i] = _Payload(embed_batch(self.encoder, p.value, **self.kw))
        return {"start": np.asarray(batch["start"]), "result": out}
