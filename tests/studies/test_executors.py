"""Parallel study executors: scheduling without duplicate training, identical tables, failures, resume, CLI."""
import csv
import json
import shutil
import sys

import pytest

from tfaug.errors import TfaugError
from tfaug.studies import executors, runner
from tfaug.studies.config import expand, study_from_dict
from tfaug.studies.executors import ExecutorSpec, Scheduler, cell_needs
from tfaug.studies.runner import run_study
from tfaug.utils.io import read_json, read_jsonl

TINY = {
    "name": "parallel",
    "dataset": "digits",
    "test": {"per_class": 20},
    "per_class": [3],
    # a named preset: a bare "classic" would choose one by validation first (6 more trainings per study, in the
    # reference and in the workers alike; the choice has its own tests in tests/training/test_augment_choice.py)
    "strategies": ["baseline", "bootstrap", "classic:glyphs", "cdcgan"],
    # the default control's res_cnn: its numbers are the same at 1 thread (a worker) and at 2 (the reference run
    # in the test process); lenet5's differed in the last digit
    "classifier": {"steps": 20, "width": 8, "batch_size": 16},
    "generator": {"steps": 10, "width": 8, "batch_size": 16, "z_dim": 8, "sample_every": 0, "checkpoint_every": 0},
    "generator_metrics": ["kid"],
    "repeats": 1,
    "seed": 11,
}


def table(path) -> list[dict]:
    """results.csv without the wall-time columns, in file order."""
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in runner.TIME_FIELDS} for r in csv.DictReader(f)]


def assert_same_table(got: list[dict], want: list[dict]) -> None:
    """Equal cell by cell; ``gen_*`` floats to 1e-7 relative (numpy's BLAS sums in another order with another
    thread count: the last digits of a KID differ, every classifier number is exact)."""
    assert [sorted(r) for r in got] == [sorted(r) for r in want]  # a resumed study orders its columns otherwise
    for g, w in zip(got, want):
        for k in w:
            if k.startswith("gen_") and w[k]:
                assert float(g[k]) == pytest.approx(float(w[k]), rel=1e-7), (k, g, w)
            else:
                assert g[k] == w[k], (k, g, w)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The tiny grid run one cell at a time in this process: the reference table."""
    out = tmp_path_factory.mktemp("seq") / "study"
    run_study(study_from_dict(TINY), out, progress=False)
    return out


# -- scheduling (pure) -----------------------------------------------------------------------------------------


def test_cell_needs_lists_the_runs_a_strategy_may_train():
    cfg = study_from_dict({**TINY, "repeats": 2, "per_class": [3, 5],
                           "strategies": ["baseline", "cdcgan+classic", "m2", "disc-bank", "bagan+filter:sphere"],
                           "methods": {"model": "cvae"}})
    needs = {(c.strategy, c.setting.name, c.repeat): cell_needs(cfg, c) for c in expand(cfg)}
    assert needs[("baseline", "k=3", 0)] == frozenset()
    assert needs[("cdcgan+classic", "k=5", 1)] == {("k=5", 1, None, "cdcgan")}
    assert needs[("m2", "k=3", 0)] == {("k=3", 0, None, "cvae"), ("k=3", 0, None, "encoder-vae")}
    assert needs[("disc-bank", "k=3", 1)] == {("k=3", 1, None, "gan-bank")}
    assert needs[("bagan+filter:sphere", "k=3", 0)] == {("k=3", 0, None, "bagan"), ("k=3", 0, None, "encoder-vae")}
    cv = study_from_dict({**TINY, "strategies": ["cdcgan"], "cv": {"folds": 2, "group_aware": True}})
    assert cell_needs(cv, expand(cv)[0]) == {("k=3", 0, f, "cdcgan") for f in (None, 0, 1)}


def test_scheduler_never_hands_out_one_untrained_run_twice():
    cfg = study_from_dict({**TINY, "strategies": ["cdcgan", "baseline", "cdcgan+classic", "bagan"], "repeats": 1,
                           "per_class": [3]})
    sched = Scheduler(expand(cfg), lambda c: cell_needs(cfg, c))
    first, second, third = sched.take(), sched.take(), sched.take()
    # cdcgan+classic waits for the cell training cdcgan; baseline and bagan run beside it
    assert [c.strategy for c in (first, second, third)] == ["cdcgan", "baseline", "bagan"]
    assert sched.take() is None
    sched.done(second)
    assert sched.take() is None  # baseline trained nothing: cdcgan is still being trained
    sched.done(first)
    assert sched.take().strategy == "cdcgan+classic"  # loads the finished run
    assert not sched.pending and set(sched.claimed) == {("k=3", 0, None, "bagan")}


def test_a_teacher_is_a_run_the_scheduler_claims_like_a_generator():
    from strategy_helpers import teach_block

    from tfaug.synthesis.strategies import register, unregister

    block = register(teach_block())
    try:
        cfg = study_from_dict({**TINY, "strategies": ["teach", "baseline", "cdcgan+teach", "classic+teach"],
                               "repeats": 2})
        needs = {(c.strategy, c.repeat): cell_needs(cfg, c) for c in expand(cfg)}
        assert needs[("teach", 1)] == {("k=3", 1, None, "teacher")}
        assert needs[("cdcgan+teach", 0)] == {("k=3", 0, None, "cdcgan"), ("k=3", 0, None, "teacher")}
        sched = Scheduler(expand(cfg), lambda c: cell_needs(cfg, c))
        got = [sched.take() for _ in range(4)]
        # repeat 0's teacher trains in one cell; its other teach cells wait; repeat 1's teacher trains beside it
        assert [(c.strategy, c.repeat) for c in got] == [("teach", 0), ("baseline", 0), ("teach", 1), ("baseline", 1)]
        assert sched.take() is None
        sched.done(got[0])
        assert (sched.take().strategy, sched.take().strategy) == ("cdcgan+teach", "classic+teach")  # load it
        cv = study_from_dict({**TINY, "strategies": ["teach"], "cv": {"folds": 2, "group_aware": True}})
        assert cell_needs(cv, expand(cv)[0]) == {("k=3", 0, f, "teacher") for f in (None, 0, 1)}
    finally:
        unregister(block)


def test_threads_split_the_cpus_between_workers():
    assert executors.worker_threads(2, cpus=8) == 4 and executors.worker_threads(3, cpus=2) == 1
    env = executors.thread_env(3)
    assert env["TF_NUM_INTRAOP_THREADS"] == env["OMP_NUM_THREADS"] == "3" and env["TF_NUM_INTEROP_THREADS"] == "2"
    with pytest.raises(TfaugError, match="address.*ray"):
        ExecutorSpec("processes", address="auto")
    with pytest.raises(TfaugError, match="unknown executor 'dask'"):
        ExecutorSpec("dask")


def test_run_lock_serialises_processes(tmp_path):
    """Two processes asking for one run directory's lock hold it one after the other."""
    import subprocess
    import textwrap

    code = textwrap.dedent(f"""
        import time, sys
        from pathlib import Path
        from tfaug.studies.executors import run_lock
        with run_lock(Path({str(tmp_path)!r}) / "r0" / "cdcgan"):
            print(f"in {{time.monotonic():.3f}}", flush=True)
            time.sleep(1.0)
            print(f"out {{time.monotonic():.3f}}", flush=True)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        spans = [tuple(float(line.split()[1]) for line in p.communicate(timeout=60)[0].split("\n") if line)
                 for p in procs]
    finally:
        for p in procs:
            p.kill()
    (a_in, a_out), (b_in, b_out) = sorted(spans)
    assert b_in >= a_out  # never both inside


# -- parallel runs give the sequential table -------------------------------------------------------------------


def test_processes_fail_by_cell_then_resume_to_the_sequential_table(sequential, tmp_path):
    """One processes study that fails on a cell, then resumes to the sequential table (every row computed by
    processes workers, the generator trained once)."""
    cfg = study_from_dict(TINY)
    want = table(sequential / "results.csv")
    assert len(want) == 4 and len({r["accuracy"] for r in want}) > 1
    assert read_json(sequential / "timing.json")["execution"]["executor"] == "local"

    out = tmp_path / "processes"
    # a foreign run where the first draw's generator belongs: that cell fails (a real, user-visible error); with
    # two workers it is handed out (last) only after two of the three cells before it have finished
    bogus = out / "generators" / "k=3" / "r0" / "cdcgan"
    bogus.mkdir(parents=True)
    (bogus / "config.json").write_text(json.dumps({"data": {"train_indices": [0, 1]}}))
    with pytest.raises(TfaugError, match=r"cell k=3 / cdcgan / repeat 0 failed in a processes worker: .*other "
                                         r"images"):
        run_study(cfg, out, progress=False, executor=ExecutorSpec("processes", workers=2))
    kept = read_jsonl(out / "results.jsonl")
    assert 2 <= len(kept) <= 3 and ("k=3", "cdcgan", 0) not in {(r["setting"], r["strategy"], r["repeat"])
                                                                  for r in kept}
    assert read_json(out / "timing.json")["execution"]["workers"] == 2  # written on the way out

    shutil.rmtree(bogus)
    res = run_study(cfg, out, progress=False, executor=ExecutorSpec("processes", workers=2))
    rows = read_jsonl(out / "results.jsonl")
    assert len(rows) == 4 and rows[:len(kept)] == kept  # finished cells were kept, not rerun
    assert_same_table(table(out / "results.csv"), want)
    assert [r["strategy"] for r in res.rows] == [r["strategy"] for r in want]
    timing = read_json(out / "timing.json")
    assert timing["execution"] == {"executor": "processes", "workers": 2,
                                   "threads": executors.worker_threads(2)}
    # every generator trained once, into the directory a sequential run uses
    runs = sorted(p.parent.relative_to(out).as_posix() for p in out.glob("generators/*/*/*/config.json"))
    assert runs == ["generators/k=3/r0/cdcgan"]


def test_ray_gives_the_sequential_rows(sequential, tmp_path):
    pytest.importorskip("ray")
    want = table(sequential / "results.csv")
    # Ray on the cells without a generator (each cell is independent, so they are the same rows): Ray's start-up
    # is the cost here, the generator path is the processes run's
    out = tmp_path / "ray"
    run_study(study_from_dict({**TINY, "strategies": ["baseline", "bootstrap"]}), out, progress=False,
              executor=ExecutorSpec("ray", workers=2))
    filled = lambda rows: [{k: v for k, v in r.items() if v != ""} for r in rows]  # noqa: E731 (no gen_ columns)
    assert_same_table(filled(table(out / "results.csv")),
                      filled(r for r in want if r["strategy"] in ("baseline", "bootstrap")))
    assert read_json(out / "timing.json")["execution"]["executor"] == "ray"


# -- CLI ------------------------------------------------------------------------------------------------------


def _config(tmp_path, strategies=("baseline",)):
    import yaml

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**TINY, "per_class": [3], "repeats": 1, "strategies": list(strategies)}))
    return str(path)


def test_ray_missing_is_one_sentence(tmp_path, capsys, monkeypatch):
    from tfaug.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    out = tmp_path / "out"
    assert main(["study", _config(tmp_path), "--out", str(out), "--executor", "ray", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs Ray" in err[0] and "pip install 'tfaug[ray]'" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("argv, needle", [(["--workers", "0"], "--workers: expected a number >= 1"),
                                          (["--workers", "two"], "--workers: expected a whole number"),
                                          (["--executor", "dask"], "invalid choice: 'dask'")])
def test_bad_executor_arguments_are_argparse_errors(tmp_path, capsys, argv, needle):
    from tfaug.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["study", _config(tmp_path), "--out", str(tmp_path / "o"), *argv])
    assert exc.value.code == 2 and needle in capsys.readouterr().err


def test_address_without_ray_and_runtime_flags_reach_the_study(tmp_path, capsys, monkeypatch):
    from tfaug.cli import main

    assert main(["study", _config(tmp_path), "--out", str(tmp_path / "o"), "--address", "auto"]) == 2
    assert "--executor ray" in capsys.readouterr().err
    seen = {}
    monkeypatch.setattr(runner, "run_study", lambda cfg, out, **kw: seen.update(cfg=cfg, **kw) or
                        (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["study", _config(tmp_path), "--out", str(tmp_path / "o"), "--strategy", "mirrored",
                 "--devices", "2", "--xla", "--executor", "processes", "--workers", "3"]) == 130
    rt = seen["cfg"].runtime
    assert (rt.strategy, rt.devices, rt.jit_compile, rt.mixed_precision) == ("mirrored", 2, True, "off")
    assert seen["executor"] == ExecutorSpec("processes", workers=3)


def test_sigterm_in_the_driver_stops_the_workers_and_keeps_finished_cells(tmp_path):
    """``kill`` of a ``processes`` study: exit 130, no worker left behind, finished rows and timing.json kept."""
    import os
    import signal
    import subprocess
    import time

    import psutil

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "tfaug.cli", "study", _config(tmp_path, strategies=["baseline", "bootstrap",
           "classic", "bootstrap:2", "classic+bootstrap:2", "bootstrap:3"]), "--out", str(out),
           "--executor", "processes", "--workers", "2", "--no-progress"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = tmp_path / "stderr.txt"  # a file, not a pipe: nobody drains a pipe while we wait (workers write to it)
    with open(log, "w") as f:
        driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=f)
    workers = []
    try:
        deadline = time.monotonic() + 300
        while not read_jsonl(out / "results.jsonl"):
            assert driver.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no cell finished in 300 s"
            time.sleep(0.5)
        workers = [p for p in psutil.Process(driver.pid).children(recursive=True)
                   if "spawn_main" in " ".join(p.cmdline())]
        assert workers
        driver.send_signal(signal.SIGTERM)
        code = driver.wait(timeout=120)
        err = log.read_text()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(10)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    for p in alive:  # keep the machine clean even when the assertion below fails
        p.kill()
    assert not alive, [p.pid for p in alive]
    assert code == 130 and "interrupted" in err, err
    rows = read_jsonl(out / "results.jsonl")
    assert 1 <= len(rows) < 6
    assert read_json(out / "timing.json")["execution"] == {"executor": "processes", "workers": 2,
                                                         "threads": executors.worker_threads(2)}


class _FlakyRay:
    """A stand-in for the ``ray`` module whose first ``init`` times out, as a raylet on a loaded machine does."""

    def __init__(self, failures: int):
        self.failures, self.inits, self.shutdowns = failures, 0, 0

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        self.inits += 1
        if self.inits <= self.failures:
            raise Exception("The current node timed out during startup.")

    def shutdown(self):
        self.shutdowns += 1


@pytest.mark.parametrize("failures, started", [(1, True), (2, False)])
def test_a_local_ray_start_is_tried_twice(monkeypatch, failures, started):
    fake = _FlakyRay(failures)
    monkeypatch.setattr(executors, "import_ray", lambda: fake)
    pool = executors._RayPool(ExecutorSpec("ray", workers=1))
    if started:
        pool._init()
        assert pool._started and fake.inits == 2 and fake.shutdowns == 1
    else:
        with pytest.raises(TfaugError, match="could not start or reach Ray .*timed out during startup"):
            pool._init()
        assert fake.inits == 2
