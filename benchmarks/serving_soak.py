"""Soak benchmark of ``tfaug serve`` under version faults: clients keep asking while versions come and go.

Not a test. It exports an untrained cDCGAN generator (28x28x1, 10 classes, as ``serving_load.py``) as version 1
of model ``soak``, starts ``tfaug serve --model-base ... --poll-seconds 0.5`` in a child process on free
loopback ports, and runs ``--clients`` threads (half REST, half gRPC, ``ServingClient.generate`` of 4 images,
unversioned: the latest available version) for ``--seconds``. Meanwhile a chaos thread acts every
``--chaos-every`` seconds, in this cycle:

1. publish a new valid version (a copy of version 1, hidden temporary directory + rename, as ``tfaug export``);
2. publish a broken version (an integer directory whose ``saved_model.pb`` is garbage);
3. publish a half-written version (a copy whose ``variables.data-*`` is truncated to 0 bytes: it fails to load);
4. complete that version (its data file written in full: the server must retry and serve it);
5. delete the serving version (the highest valid one; version 1 is never deleted, so one always remains);
6. delete the broken versions.

Every valid version is a copy of version 1, so every answer must be byte-identical to the answer version 1 gave
at the start for the same (class ids, seeds); a different image counts as an error, as does any failed request.
It reports requests, errors (target 0), p50/p99 latency per transport, and the server's peak resident memory
(``VmHWM`` of the child process) and RSS samples, and writes ``benchmarks/results/serving_soak.{md,json}`` with
the machine, command, date and load average.

Bounded: loopback only, ``--seconds`` <= 600, ``--max-requests`` in all.

    .venv/bin/python benchmarks/serving_soak.py --seconds 60 --clients 8
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_load import NUM_CLASSES, _free_port, export_model  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
MODEL, SIZE, POOL = "soak", 4, 32  # model name, images per request, distinct (class ids, seeds) requests
RESULTS = Path(__file__).resolve().parent / "results"
THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")  # recorded with the command


def _proc_status(pid: int) -> dict:
    """VmRSS / VmHWM of ``pid`` in MiB (empty when the process is gone)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024.0
    except OSError:
        pass
    return out


def _machine() -> str:
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    ext = [f for f in ("avx512f", "amx_tile") if f in flags]
    return f"{model}, {os.cpu_count()} CPU cores ({', '.join(ext) or 'no AVX-512/AMX'}), no GPU used, {platform.system()}"


class Chaos:
    """Adds, breaks, completes and deletes versions of ``base`` on a fixed cycle (see the module docstring)."""

    def __init__(self, base: Path):
        self.base, self.next_version, self.step = base, 2, 0
        self.valid, self.broken, self.pending = [1], [], None
        self.log: list[str] = []

    def _copy(self, v: int, truncate: bool = False) -> Path:
        tmp = self.base / f".{v}.tmp-soak"
        shutil.copytree(self.base / "1", tmp)
        if truncate:
            for data in (tmp / "variables").glob("variables.data-*"):
                data.write_bytes(b"")
        os.rename(tmp, self.base / str(v))
        return self.base / str(v)

    def act(self) -> None:
        kind = self.step % 6
        self.step += 1
        v = self.next_version
        if kind == 0:
            self._copy(v)
            self.valid.append(v)
            self.next_version += 1
            self.log.append(f"add valid v{v}")
        elif kind == 1:
            (self.base / str(v)).mkdir()
            (self.base / str(v) / "saved_model.pb").write_bytes(b"garbage, not a SavedModel")
            self.broken.append(v)
            self.next_version += 1
            self.log.append(f"add broken v{v}")
        elif kind == 2:
            self._copy(v, truncate=True)
            self.pending = v
            self.next_version += 1
            self.log.append(f"add half-written v{v}")
        elif kind == 3 and self.pending is not None:
            for data in (self.base / "1" / "variables").glob("variables.data-*"):
                shutil.copyfile(data, self.base / str(self.pending) / "variables" / data.name)
            self.valid.append(self.pending)
            self.log.append(f"complete v{self.pending}")
            self.pending = None
        elif kind == 4 and len(self.valid) > 1:
            top = max(self.valid)
            shutil.rmtree(self.base / str(top))
            self.valid.remove(top)
            self.log.append(f"delete serving v{top}")
        elif kind == 5 and self.broken:
            for b in self.broken:
                shutil.rmtree(self.base / str(b), ignore_errors=True)
            self.log.append(f"delete broken {self.broken}")
            self.broken = []


def run(args) -> dict:
    from tfaug.errors import TfaugError
    from tfaug.serving.client import ServingClient

    tmp = Path(tempfile.mkdtemp(prefix="serving_soak-"))
    export_model(tmp, MODEL)
    rest_port, grpc_port = _free_port(), _free_port()
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "tfaug", "serve", "--model-base", str(tmp), "--rest-port",
                             str(rest_port), "--grpc-port", str(grpc_port), "--poll-seconds", "0.5"],
                            stdout=log, stderr=subprocess.STDOUT)
    url, target = f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"
    try:
        probe = ServingClient.rest(url, timeout=5, retries=0)
        deadline = time.monotonic() + 180
        while True:
            try:
                if any(s["state"] == "AVAILABLE" for s in probe.status(MODEL)):
                    break
            except TfaugError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"tfaug serve did not start; see {tmp / 'serve.log'}")
            time.sleep(0.5)
        rng = np.random.default_rng(0)
        pool = [(rng.integers(0, NUM_CLASSES, SIZE).astype(np.int32), rng.integers(0, 2**31, SIZE).astype(np.int64))
                for _ in range(POOL)]
        reference = [np.asarray(ServingClient.rest(url, timeout=60, retries=0).generate(MODEL, c, s)) for c, s in pool]
        lock, stop = threading.Lock(), threading.Event()
        latencies = {"REST": [], "gRPC": []}
        errors: list[str] = []
        sent = [0]
        rss = []

        def client(k: int):
            label = "REST" if k % 2 == 0 else "gRPC"
            factory = ServingClient.rest if label == "REST" else ServingClient.grpc
            gen = factory(url if label == "REST" else target, timeout=60, retries=0).generate
            i = k
            while not stop.is_set():
                with lock:
                    if sent[0] >= args.max_requests:
                        return
                    sent[0] += 1
                cls, seeds = pool[i % POOL]
                t0 = time.perf_counter()
                try:
                    images = np.asarray(gen(MODEL, cls, seeds))
                    ok = np.array_equal(images, reference[i % POOL])
                    with lock:
                        latencies[label].append(time.perf_counter() - t0)
                        if not ok:
                            errors.append(f"{label}: images differ from version 1's")
                except TfaugError as exc:
                    with lock:
                        errors.append(f"{label}: {exc}")
                i += args.clients

        chaos = Chaos(tmp / MODEL)
        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(args.clients)]
        load_start = os.getloadavg()
        t_start = time.monotonic()
        for t in threads:
            t.start()
        next_chaos = t_start + args.chaos_every
        while time.monotonic() - t_start < args.seconds:
            rss.append(_proc_status(proc.pid).get("VmRSS", float("nan")))
            if time.monotonic() >= next_chaos:
                chaos.act()
                next_chaos += args.chaos_every
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        elapsed = time.monotonic() - t_start
        load_end = os.getloadavg()
        peak = _proc_status(proc.pid)
        status = probe.status(MODEL)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    per = {}
    for label, lat in latencies.items():
        ms = np.asarray(lat) * 1000.0
        per[label] = {"requests": int(len(ms)), "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
                      "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None}
    every = np.asarray(latencies["REST"] + latencies["gRPC"]) * 1000.0
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([*(f"{k}={os.environ[k]}" for k in THREAD_ENV if k in os.environ),
                             ".venv/bin/python", *sys.argv]),
        "machine": _machine(),
        "load_average_start": [round(x, 2) for x in load_start], "load_average_end": [round(x, 2) for x in load_end],
        "clients": args.clients, "seconds": round(elapsed, 1), "images_per_request": SIZE,
        "requests": int(len(every)), "errors": len(errors), "first_errors": errors[:5],
        "p50_ms": float(np.percentile(every, 50)) if len(every) else None,
        "p99_ms": float(np.percentile(every, 99)) if len(every) else None,
        "per_transport": per,
        "server_peak_rss_mib": peak.get("VmHWM"), "server_rss_mib_first": rss[0] if rss else None,
        "server_rss_mib_max_sampled": float(np.nanmax(rss)) if rss else None,
        "chaos_actions": chaos.log, "final_status": status,
    }


def write_results(r: dict) -> None:
    from tfaug.utils.io import atomic_write_text, write_json

    lines = [
        "# Serving soak: 8 clients while versions are added, broken, completed and deleted", "",
        "`benchmarks/serving_soak.py` (see its docstring for the fault cycle). Every answer must be byte-identical to",
        "version 1's for the same request (all valid versions are copies of it); a failed request or a different",
        "image is an error.", "",
        f"## Run of {r['date_utc']}", "", "Command (from the repository root):", "", "```", r["command"], "```", "",
        f"Machine: {r['machine']}. Load average (1, 5, 15 min) {r['load_average_start']} at the start and "
        f"{r['load_average_end']} at the end: the machine was shared with other developers' jobs, so latencies are "
        "noisy; errors and memory are the point of this run.", "",
        "| clients | seconds | requests | errors | p50 ms | p99 ms | server peak RSS (VmHWM) |",
        "|---|---|---|---|---|---|---|",
        f"| {r['clients']} | {r['seconds']} | {r['requests']} | {r['errors']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
        f"| {r['server_peak_rss_mib']:.0f} MiB |", "",
        "| transport | requests | p50 ms | p99 ms |", "|---|---|---|---|",
        *[f"| {k} | {v['requests']} | {v['p50_ms']:.1f} | {v['p99_ms']:.1f} |" for k, v in r["per_transport"].items()
          if v["requests"]],
        "",
        f"Server RSS: {r['server_rss_mib_first']:.0f} MiB at the first sample, {r['server_rss_mib_max_sampled']:.0f} MiB "
        "the highest 0.2 s sample.", "",
        f"Fault actions ({len(r['chaos_actions'])}): " + "; ".join(r["chaos_actions"]) + ".", "",
        "Versions the server reported at the end: "
        + ", ".join(f"{s['version']} {s['state']}" for s in r["final_status"]) + ".", "",
    ]
    if r["first_errors"]:
        lines += ["First errors:", "", *[f"- {e}" for e in r["first_errors"]], ""]
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "serving_soak.md", "\n".join(lines))
    write_json(RESULTS / "serving_soak.json", r)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8, help="client threads, half REST, half gRPC (default 8)")
    ap.add_argument("--seconds", type=float, default=60.0, help="soak duration (default 60)")
    ap.add_argument("--chaos-every", type=float, default=3.0, help="seconds between fault actions (default 3)")
    ap.add_argument("--max-requests", type=int, default=200_000, help="cap on requests in all (default 200000)")
    ap.add_argument("--no-write", action="store_true", help="print the result only")
    args = ap.parse_args(argv)
    if not (1 <= args.clients <= 64 and 0 < args.seconds <= 600 and args.chaos_every > 0):
        ap.error("bounds: 1 <= --clients <= 64, 0 < --seconds <= 600, --chaos-every > 0")
    r = run(args)
    print(json.dumps({k: v for k, v in r.items() if k != "final_status"}, indent=1))
    if not args.no_write:
        write_results(r)
    return 0 if r["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
