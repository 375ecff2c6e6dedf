"""Run a study's cells in parallel: ``local`` (in process), ``processes`` (one machine) or ``ray`` (a cluster).

Cells are independent jobs except for what they share: every cell of one (scope, repeat[, fold]) uses the same
generators, encoder and teacher, trained once into ``OUT/generators/<scope>/r<repeat>/<run>`` (see
``tfaug.studies.resources``) and loaded, not retrained, once that run is finished. The scheduler here keeps the
most parallelism without ever training one run twice:

- :func:`cell_needs` lists the run directories a cell may train: what its strategy object declares it
  ``needs`` (``tfaug.synthesis.strategies``: its generator, the S3 methods' generator and VAE encoder, the encoder
  of a ``sphere`` filter, the draw's teacher classifier), for the cell's draw and, in group-aware
  cross-validation, for every fold's draw.
- A free worker takes the first pending cell (in the sequential run order) none of whose runs is *claimed* by a
  running cell; the runs it needs that are not yet finished become its claims until it ends. So cells that train
  nothing (baseline, bootstrap, classic ...) start at once, different generators of one draw train side by side,
  and the other cells of a draw start as soon as its generator exists, loading it from disk.
- As a safety net for anything the static list misses, workers train every run under an exclusive file lock
  (``<run>.lock`` next to it): a second worker waits, then loads the finished run. The in-memory judge of the
  ``consistency`` filter/metric is not a run directory: a worker that needs it trains it itself (same seed, same
  model).

Only the driver writes ``results.jsonl`` (one atomic, fsynced line per finished cell, in completion order) and the
report, which orders rows by setting, repeat and strategy whatever the completion order; seeds come from the
study seed, the repeat and the fold only, so a parallel study gives the rows of a sequential one and resumes like
one. Workers receive plain data only (the validated study mapping, the runtime, the output directory and cell
keys) and rebuild the study themselves; ``processes`` spawns them (never forks a process holding TensorFlow) with
``TF_NUM_INTRAOP_THREADS``/``OMP_NUM_THREADS`` = cpu_count // workers set before TensorFlow is imported.

An exception in a worker stops the study with one sentence naming the cell; Ctrl-C or SIGTERM in the driver stops
every worker. Finished cells stay in ``results.jsonl`` either way.
"""
from __future__ import annotations

import contextlib
import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path

from tfaug.errors import TfaugError

EXECUTORS = ("local", "processes", "ray")
JOIN_SECONDS = 5.0  # grace period for a worker to exit before it is killed


@dataclass(frozen=True)
class ExecutorSpec:
    """Where the cells of a study run.

    Attributes:
        name: ``local`` (this process, one cell at a time), ``processes`` or ``ray``.
        workers: parallel workers, >= 1; None = ``os.cpu_count()`` (``processes``, local Ray) or the cluster's
            CPU count (``ray`` with ``address``). Ignored by ``local``.
        address: ``ray`` only: an existing cluster (``auto``, ``ray://host:10001`` ...); None starts a local Ray
            with ``num_cpus=workers``.
    """

    name: str = "local"
    workers: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise TfaugError(f"unknown executor {self.name!r}; choose one of: {', '.join(EXECUTORS)}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise TfaugError(f"workers must be an integer >= 1, got {self.workers!r}")
        if self.address is not None and self.name != "ray":
            raise TfaugError("--address is a setting of the ray executor only; add --executor ray")


def worker_threads(workers: int, cpus: int | None = None) -> int:
    """Intra-op threads per worker: ``cpus // workers`` (cpus default ``os.cpu_count()``), at least 1."""
    return max(1, (cpus or os.cpu_count() or 1) // max(1, workers))


def thread_env(threads: int) -> dict[str, str]:
    """Environment that caps TensorFlow and OpenMP at ``threads`` intra-op threads (set before TF is imported)."""
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(min(2, threads)),
            "OMP_NUM_THREADS": str(threads)}


# -- what a cell trains --------------------------------------------------------------------------------------


def cell_needs(cfg, cell) -> frozenset:
    """Run directories ``(scope, repeat, fold or None, run name)`` that ``cell`` may train (see module docstring)."""
    from tfaug.studies.config import strategy_of

    s = strategy_of(cfg, cell.strategy)
    names = set(s.needs.runs)
    scope = "grid" if cell.setting.kind == "grid" else cell.setting.name
    needs = {(scope, cell.repeat, None, n) for n in names}
    if cfg.cv and (cfg.cv["group_aware"] or s.method):
        needs |= {(cell.setting.name, cell.repeat, i, n) for i in range(cfg.cv["folds"]) for n in names}
    return frozenset(needs)


class Scheduler:
    """Hands out cells so that no two running cells may train the same run (pure bookkeeping, no I/O).

    Args:
        cells: pending cells in the sequential run order.
        needs: ``cell -> frozenset`` of the runs it may train (:func:`cell_needs`).
    """

    def __init__(self, cells, needs):
        self.pending = list(cells)
        self.needs = {c.key: frozenset(needs(c)) for c in self.pending}
        self.claimed: dict = {}  # run -> key of the running cell training it
        self.finished: set = set()

    def take(self):
        """The first pending cell whose unfinished runs nobody trains now (claiming them), or None."""
        for i, cell in enumerate(self.pending):
            todo = self.needs[cell.key] - self.finished
            if not todo & self.claimed.keys():
                self.claimed.update({run: cell.key for run in todo})
                return self.pending.pop(i)
        return None

    def done(self, cell) -> None:
        """``cell`` ended successfully: its runs are finished, its claims released."""
        for run in [r for r, k in self.claimed.items() if k == cell.key]:
            del self.claimed[run]
            self.finished.add(run)


# -- the driver ----------------------------------------------------------------------------------------------


def run_cells(spec: ExecutorSpec, cfg, out, cells, on_row, *, data_dir: str | None = None,
              record: dict | None = None) -> dict:
    """Run ``cells`` of ``cfg`` on ``spec``'s workers, calling ``on_row(cell, row)`` in the driver as each ends.

    Args:
        spec: ``processes`` or ``ray`` (``local`` is the runner's own loop).
        cfg: the validated ``StudyConfig``; workers rebuild it from ``cfg.raw`` and ``cfg.runtime``.
        out: the study directory (on a filesystem every worker sees).
        cells: the pending cells, in run order.
        on_row: driver callback; it alone writes results.
        data_dir: TensorFlow Datasets directory for ``tfds:`` specs.
        record: optional dict updated with the returned facts as soon as they are known (kept on interruption).

    Returns:
        ``{"executor", "workers", "threads"}`` for timing.json.

    Raises:
        TfaugError: a worker failed on a cell (the sentence names it), or the executor cannot start.
    """
    payload = worker_payload(cfg, out, data_dir)
    pool = _RayPool(spec) if spec.name == "ray" else _ProcessPool(spec)
    info = {"executor": spec.name, "workers": pool.workers, "threads": pool.threads}
    if record is not None:
        record.update(info)
    if not cells:
        return info
    sched = Scheduler(cells, lambda c: cell_needs(cfg, c))
    running: dict[int, object] = {}
    try:
        pool.start(payload, min(pool.workers, len(cells)))
        idle = list(range(pool.size))
        while sched.pending or running:
            while idle:
                cell = sched.take()
                if cell is None:
                    break
                slot = idle.pop(0)
                running[slot] = cell
                pool.submit(slot, list(cell.key))
            for slot, ok, result in pool.wait():
                cell = running.pop(slot)
                idle.append(slot)
                if not ok:
                    raise TfaugError(f"cell {describe(cell)} failed in a {spec.name} worker: {result}")
                sched.done(cell)
                on_row(cell, result)
    finally:
        pool.close()
    return info


def describe(cell) -> str:
    """``setting / strategy / repeat r`` of a cell, as named in error messages."""
    return f"{cell.setting.name} / {cell.strategy} / repeat {cell.repeat}"


def worker_payload(cfg, out, data_dir) -> dict:
    """Plain data a worker rebuilds the study from; checks that it rebuilds to the same study."""
    from tfaug.config import to_dict
    from tfaug.studies.config import study_from_dict

    if not cfg.raw or study_from_dict(cfg.raw) != cfg:
        raise TfaugError("this study was not built from a study file or mapping, so workers cannot rebuild it; "
                         "load it with load_study or study_from_dict")
    return {"raw": cfg.raw, "runtime": to_dict(cfg.runtime), "out": os.path.abspath(out), "data_dir": data_dir}


class StudyWorker:
    """A worker's side: rebuilds the study from plain data once, then runs cells by key (row dict per cell)."""

    def __init__(self, payload: dict):
        self.payload = payload
        self._state = None
        # Thread settings travel in the payload (processes and Ray actors): set before this worker imports TensorFlow.
        os.environ.update(payload.get("env") or {})

    def run(self, key) -> dict:
        from tfaug.studies.cells import build_state

        if self._state is None:
            import dataclasses

            from tfaug.config import RuntimeConfig
            from tfaug.studies.config import study_from_dict

            p = self.payload
            cfg = dataclasses.replace(study_from_dict(p["raw"]), runtime=RuntimeConfig(**p["runtime"]))
            _limit_tf_threads()
            self._state = build_state(cfg, p["out"], data_dir=p["data_dir"], resources_cls=_locked_resources())
        cells = {c.key: c for c in self._state.cells}
        return self._state.run_cell(cells[tuple(key)])


def _locked_resources():
    """``CellResources`` whose runs (generators, encoder, teacher) train under :func:`run_lock`: a second worker
    waits, then loads the run."""
    from tfaug.studies.resources import CellResources

    class LockedResources(CellResources):
        def _guard_dir(self, run_dir):
            return run_lock(run_dir)

    return LockedResources


@contextlib.contextmanager
def run_lock(run_dir):
    """Exclusive inter-process lock ``<parent>/.<run>.lock`` while a run directory is trained or loaded (POSIX
    ``flock``; a no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(run_dir.parent / f".{run_dir.name}.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _limit_tf_threads() -> None:
    """Apply the thread environment to TensorFlow too (in case it was imported before the variables were read)."""
    n = os.environ.get("TF_NUM_INTRAOP_THREADS")
    if not n:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(n))
        tf.config.threading.set_inter_op_parallelism_threads(int(os.environ.get("TF_NUM_INTEROP_THREADS", n)))
    except RuntimeError:  # TensorFlow already initialised: the environment variables were read then
        pass


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, TfaugError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- local processes -----------------------------------------------------------------------------------------


def _process_main(slot: int, payload: dict, tasks, results) -> None:
    """Entry point of a spawned worker: run cell keys from ``tasks`` until ``None``; report to ``results``."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it terminates us
    worker = StudyWorker(payload)
    parent = os.getppid()
    while True:
        try:
            key = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the driver died without closing us (SIGKILL): do not linger
                return
            continue
        if key is None:
            return
        try:
            results.put((slot, True, worker.run(key)))
        except BaseException as exc:  # noqa: BLE001 - reported to the driver, which stops the study
            results.put((slot, False, _error_text(exc)))


class _ProcessPool:
    """``workers`` spawned processes, each with its own task queue (so a dead worker's cell is known)."""

    def __init__(self, spec: ExecutorSpec):
        self.workers = spec.workers or os.cpu_count() or 1
        self.threads = worker_threads(self.workers)
        self.size = 0
        self._procs, self._tasks, self._results = [], [], None

    def start(self, payload: dict, size: int) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.size = size
        self._results = ctx.Queue()
        payload = {**payload, "env": thread_env(self.threads)}  # applied by StudyWorker, as in Ray actors
        for slot in range(size):
            tasks = ctx.Queue()
            proc = ctx.Process(target=_process_main, args=(slot, payload, tasks, self._results),
                               name=f"tfaug-study-worker-{slot}", daemon=True)
            proc.start()
            self._procs.append(proc)
            self._tasks.append(tasks)

    def submit(self, slot: int, key) -> None:
        self._tasks[slot].put(key)

    def wait(self) -> list:
        """Block until at least one running cell ends; a worker that died is reported as a failure."""
        while True:
            try:
                return [self._results.get(timeout=0.5)]
            except queue.Empty:
                for slot, proc in enumerate(self._procs):
                    if not proc.is_alive():
                        return [(slot, False, f"the worker process died (exit code {proc.exitcode})")]

    def close(self) -> None:
        for tasks, proc in zip(self._tasks, self._procs):
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + JOIN_SECONDS
        for proc in self._procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        for q in [*self._tasks, self._results]:
            if q is not None:
                q.close()
                q.cancel_join_thread()
        self._procs, self._tasks = [], []


# -- Ray -----------------------------------------------------------------------------------------------------


def import_ray():
    """The ``ray`` module, or one sentence on how to install it."""
    try:
        import ray
    except ImportError:
        raise TfaugError("the ray executor needs Ray; install it with: pip install 'tfaug[ray]'") from None
    return ray


class _RayPool:
    """One Ray actor per worker (each holds its rebuilt study); local Ray unless ``spec.address`` is given."""

    def __init__(self, spec: ExecutorSpec):
        self.ray = import_ray()
        self.spec = spec
        self._started = False
        if spec.address is None:
            self.workers = spec.workers or os.cpu_count() or 1
            self.cpus = self.workers
            self.threads = worker_threads(self.workers)
        else:
            self._init()
            self.cpus = int(self.ray.cluster_resources().get("CPU", 1))
            self.workers = spec.workers or self.cpus
            self.threads = worker_threads(self.workers, self.cpus)
        self.size = 0
        self._actors, self._futures = [], {}

    def _init(self) -> None:
        if self.ray.is_initialized():
            return
        kwargs = {"address": self.spec.address} if self.spec.address else {"num_cpus": self.cpus}
        # Ray waits a fixed 30 s for a new local node's raylet; on a loaded machine that can run out, so a local
        # start gets a second try (a cluster address does not: an unreachable cluster stays unreachable).
        attempts = 1 if self.spec.address else 2
        for attempt in range(attempts):
            try:
                self.ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR", **kwargs)
                break
            except Exception as exc:  # noqa: BLE001 - connection problems become one sentence
                if attempt + 1 < attempts:
                    self.ray.shutdown()
                    continue
                raise TfaugError(f"could not start or reach Ray ({_error_text(exc)})") from None
        self._started = True

    def start(self, payload: dict, size: int) -> None:
        self._init()
        actor = self.ray.remote(StudyWorker).options(num_cpus=1 if self.spec.address is None else self.threads)
        self.size = size
        self._actors = [actor.remote({**payload, "env": thread_env(self.threads)}) for _ in range(size)]

    def submit(self, slot: int, key) -> None:
        self._futures[self._actors[slot].run.remote(key)] = slot

    def wait(self) -> list:
        ready, _ = self.ray.wait(list(self._futures), num_returns=1)
        out = []
        for ref in ready:
            slot = self._futures.pop(ref)
            try:
                out.append((slot, True, self.ray.get(ref)))
            except self.ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                out.append((slot, False, _error_text(cause) if cause is not None else _error_text(exc)))
            except self.ray.exceptions.RayError as exc:
                out.append((slot, False, f"the Ray worker died ({type(exc).__name__})"))
        return out

    def close(self) -> None:
        for a in self._actors:
            try:
                self.ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._actors, self._futures = [], {}
        if self._started:
            self.ray.shutdown()
            self._started = False


__all__ = ["EXECUTORS", "ExecutorSpec", "Scheduler", "StudyWorker", "cell_needs", "describe", "import_ray",
           "run_cells", "run_lock", "thread_env", "worker_payload", "worker_threads"]
