"""``python -m jaxloss report``: one command that proves the gradients and measures the speed on a device.

Three stages, each in its own processes and within its share of ``--time-budget``
(8 minutes by default), so that the report comes from one short run when a GPU or
TPU is lent for a few minutes:

1. ``verify``: closed-form against autodiff gradients (``python -m jaxloss verify``'s
   rows) on every local device, in float32 and bfloat16, over ``--jobs`` processes;
2. ``bench``: the quick benchmark (``python -m benchmarks``) against optax, plain
   autodiff and PyTorch (on CUDA where it has it) at sizes that fill the device;
3. ``large-vocab``: ``linear_cross_entropy`` at an LLM shape against the naive XLA
   form, Liger Kernel and PyTorch, in time and peak memory
   (``python -m benchmarks.large_vocab``).

A stage that runs out of time stops where it is and says so; a stage that cannot
run (the benchmarks are not importable from a wheel) is skipped with the reason.
The report is rewritten after every stage, so a run cut short still leaves one:
``report.md`` and ``report.json`` (the device, the versions and every figure) in
``--out``, beside each stage's own outputs and logs. It runs from a source
checkout with whatever jax the machine has: nothing needs to be installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCHEMA = "jaxloss-accelerator-report/1"
STAGES = ("verify", "bench", "large-vocab")
DEFAULT_BUDGET = 480.0
# Each stage's share of the time that is left when it starts (the last takes the rest), so
# that time a stage does not use passes to the next.
SHARES = {"verify": 0.30, "bench": 0.37 / 0.64, "large-vocab": 1.0}
RESERVE = 10.0  # seconds kept back for writing the report
DISTRIBUTIONS = (
    "jax",
    "jaxlib",
    "jax-cuda13-plugin",
    "jax-cuda13-pjrt",
    "jax-cuda12-plugin",
    "jax-cuda12-pjrt",
    "libtpu",
    "optax",
    "chex",
    "numpy",
    "torch",
    "triton",
    "liger-kernel",
    "keras",
    "matplotlib",
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """What each stage runs, by platform (``--quick``: the short form CI runs)."""

    bench_sizes: str
    bench_dtypes: str
    bench_rounds: int
    bench_round_time: float
    bench_peers: str | None  # None: the harness's default peers
    bench_losses: str | None
    verify_losses: str | None
    lce: tuple[int, int, int]
    lce_dtype: str
    lce_rounds: int
    lce_impls: str | None


ACCELERATOR = Settings(
    bench_sizes="8192x1024,8192x32768",
    bench_dtypes="float32",
    bench_rounds=3,
    bench_round_time=0.01,
    bench_peers=None,
    bench_losses=None,
    verify_losses=None,
    lce=(8192, 4096, 128256),
    lce_dtype="bfloat16",
    lce_rounds=10,
    lce_impls=None,
)
CPU = Settings(
    bench_sizes="1e4,1e5",
    bench_dtypes="float32",
    bench_rounds=3,
    bench_round_time=0.004,
    bench_peers=None,
    bench_losses=None,
    verify_losses=None,
    lce=(512, 128, 4096),
    lce_dtype="float32",  # XLA:CPU has no fast bfloat16 matmul
    lce_rounds=3,
    lce_impls="jaxloss,naive,liger,torch_naive",  # PyTorch's chunked CPU path takes seconds here
)
QUICK = Settings(
    bench_sizes="1e3",
    bench_dtypes="float32",
    bench_rounds=1,
    bench_round_time=0.002,
    bench_peers="autodiff,optax,floor",
    bench_losses="mean_squared_error,huber",
    verify_losses="mean_squared_error,huber",
    lce=(128, 32, 512),
    lce_dtype="float32",
    lce_rounds=2,
    lce_impls="jaxloss,naive",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jaxloss report",
        description="One command that proves the gradients and measures the speed on a device: verify, the quick "
        "benchmark and the large-vocabulary benchmark, each within its share of --time-budget.",
    )
    parser.add_argument("--platform", choices=["cpu", "gpu", "tpu"], default=None, help="default: jax's default")
    parser.add_argument("--out", default="results/report", help="report folder (default results/report)")
    parser.add_argument("--time-budget", type=float, default=DEFAULT_BUDGET, help="seconds in all (default 480)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the short form (a few losses, tiny sizes): what CI runs, in well under a minute",
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="verify processes (default: 4 on an accelerator, 1 on CPU)"
    )
    parser.add_argument("--losses", default=None, help="comma-separated losses for verify and bench (default: all)")
    parser.add_argument(
        "--bench-sizes", default=None, help="override the bench sizes (elements or RxC, comma-separated)"
    )
    parser.add_argument("--lce-shape", default=None, help="override the large-vocabulary shape: N,d,V")
    parser.add_argument("--worker", choices=["verify"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--shard", default="0/1", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rows-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown:
        parser.error(f"--stages: unknown {unknown}; choose from {', '.join(STAGES)}")
    if args.lce_shape is not None:
        try:
            n, d, v = (int(x) for x in args.lce_shape.split(","))
        except ValueError:
            parser.error(f"--lce-shape: expected N,d,V; received {args.lce_shape!r}")
        args.lce_shape = (n, d, v)
    return args


# ----------------------------------------------------------------------------
# The checkout and the environment (no jax here: the stages own the device)
# ----------------------------------------------------------------------------


def benchmarks_location() -> Path | None:
    """The folder of the importable ``benchmarks`` package with its harness, or None."""
    try:
        spec = importlib.util.find_spec("benchmarks.harness")
    except ImportError:  # no `benchmarks` package, or one that is not a package
        return None
    return None if spec is None or spec.origin is None else Path(spec.origin).resolve().parent


def checkout_root() -> Path:
    """The folder that holds this jaxloss package (a source checkout's root)."""
    return Path(__file__).resolve().parents[1]


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in DISTRIBUTIONS:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return {k: v for k, v in out.items() if v is not None or k in ("jax", "jaxlib", "optax", "torch", "liger-kernel")}


def _command(cmd: list[str], timeout: float = 10.0) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(argv: list[str]) -> dict[str, Any]:
    root = checkout_root()
    from . import __version__

    gpus = None
    if shutil.which("nvidia-smi"):
        gpus = _command(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    return {
        "command": "python -m jaxloss report " + " ".join(argv),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "jaxloss": __version__,
        "git_commit": _command(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
        if (root / ".git").exists()
        else None,
        "python": platform.python_version(),
        "versions": _versions(),
        "host": {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "system": platform.platform()},
        "nvidia_smi": gpus,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The children's environment: this checkout first on the path (jaxloss and benchmarks)."""
    env = dict(os.environ)
    root = str(checkout_root())
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    env.setdefault("KERAS_BACKEND", "jax")
    env.update(extra or {})
    return env


def _run(cmd: list[str], log: Path, timeout: float, env: dict[str, str]) -> tuple[int | None, float]:
    """Run ``cmd`` with its output in ``log``; None for the exit code when it ran past ``timeout``."""
    start = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=checkout_root())
        try:
            code: int | None = proc.wait(timeout=max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
    return code, time.perf_counter() - start


def _tail(log: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])[-1500:]
    except OSError:
        return ""


# ----------------------------------------------------------------------------
# Stage 1: verify
# ----------------------------------------------------------------------------


def verify_worker(args: argparse.Namespace) -> int:
    """Rows of this shard, on every device, float32 and bfloat16, one JSON line each, until the deadline."""
    import jax

    from ._registry import resolve
    from ._verify import rows, verify_row

    index, count = (int(x) for x in args.shard.split("/"))
    devices = jax.devices(args.platform) if args.platform else jax.local_devices()
    selected = rows()
    if args.losses:
        wanted = {resolve(name.strip()).name for name in args.losses.split(",")}
        selected = [(s, e) for s, e in selected if s.name in wanted]
    mine = selected[index::count]
    with open(args.rows_out, "w") as fh:

        def emit(record: dict[str, Any]) -> None:
            fh.write(json.dumps(record) + "\n")
            fh.flush()

        emit(
            {
                "kind": "devices",
                "devices": [
                    {"id": f"{d.platform}:{d.id}", "kind": getattr(d, "device_kind", d.platform), "name": str(d)}
                    for d in devices
                ],
                "jax": jax.__version__,
                "total_rows": len(selected) * len(devices) * 2,
            }
        )
        for spec, example in mine:
            for device in devices:
                for dtype in ("float32", "bfloat16"):
                    if args.deadline is not None and time.time() > args.deadline:
                        emit({"kind": "budget"})
                        return 0
                    try:
                        row = verify_row(spec, example, device, dtype)
                    except Exception as err:  # a row that raises fails, the others go on
                        row = {
                            "loss": spec.name,
                            "example": example.label,
                            "options": {k: repr(v) for k, v in example.options.items()},
                            "device": f"{device.platform}:{device.id}",
                            "dtype": dtype,
                            "passed": False,
                            "error": f"{type(err).__name__}: {err}"[:500],
                        }
                    emit({"kind": "row", **row})
    return 0


def verify_stage(
    args: argparse.Namespace, settings: Settings, out: Path, budget: float, margin: float = 15.0
) -> dict[str, Any]:
    jobs = args.jobs or (1 if args.platform == "cpu" else min(4, max(1, (os.cpu_count() or 1) // 4)))
    # No row starts after the deadline; ``margin`` is for the rows in progress to finish.
    deadline = time.time() + budget - margin
    losses = args.losses or settings.verify_losses
    procs = []
    for i in range(jobs):
        rows_out = out / f"verify-{i}.jsonl"
        cmd = [sys.executable, "-m", "jaxloss", "report", "--worker", "verify", "--shard", f"{i}/{jobs}"]
        cmd += ["--deadline", str(deadline), "--rows-out", str(rows_out)]
        cmd += ["--platform", args.platform] if args.platform else []
        cmd += ["--losses", losses] if losses else []
        log = open(out / "logs" / f"verify-{i}.log", "w")
        # Small arrays: several processes share the device, none holding most of its memory.
        env = _env({"XLA_PYTHON_CLIENT_PREALLOCATE": "false"})
        procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=checkout_root()), log))
    stopped = 0
    for proc, log in procs:
        try:
            proc.wait(timeout=max(1.0, deadline + margin - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stopped += 1
        log.close()
    results, devices, total, cut = [], None, None, stopped > 0
    for i in range(jobs):
        path = out / f"verify-{i}.jsonl"
        for line in path.read_text().splitlines() if path.exists() else []:
            record = json.loads(line)
            if record["kind"] == "row":
                results.append({k: v for k, v in record.items() if k != "kind"})
            elif record["kind"] == "devices":
                devices, total = record["devices"], record["total_rows"]
            elif record["kind"] == "budget":
                cut = True
        path.unlink(missing_ok=True)
    if devices is None:
        return {"status": "failed", "message": "no verify worker started: " + _tail(out / "logs" / "verify-0.log")}
    failed = [r for r in results if not r["passed"]]
    by = {}
    for r in results:
        key = f"{r['device']} {r['dtype']}"
        by.setdefault(key, {"passed": 0, "failed": 0})["passed" if r["passed"] else "failed"] += 1
    not_run = (total or 0) - len(results)
    status = "failed" if failed else ("partial" if not_run else "ok")
    message = f"{len(results) - len(failed)} of {total} rows passed, {len(failed)} failed"
    if not_run:
        message += f", {not_run} not run ({'time budget spent' if cut else 'workers stopped'})"
    return {
        "status": status,
        "message": message,
        "devices": devices,
        "jobs": jobs,
        "total_rows": total,
        "not_run": not_run,
        "by_device_dtype": by,
        "failures": failed,
        "rows": results,
    }


# ----------------------------------------------------------------------------
# Stages 2 and 3: the benchmarks (source checkout only)
# ----------------------------------------------------------------------------


def _no_benchmarks() -> str | None:
    location = benchmarks_location()
    if location is None:
        return (
            "skipped: the benchmarks package is not importable (jaxloss from a wheel); run the report from a "
            "source checkout"
        )
    if location.parent != checkout_root():
        return f"skipped: the importable benchmarks ({location}) are not this checkout's ({checkout_root()})"
    return None


def _bench_once(
    args: argparse.Namespace, settings: Settings, folder: Path, out: Path, budget: float, peers: str | None, name: str
) -> tuple[int | None, Path]:
    cmd = [sys.executable, "-m", "benchmarks", "--sizes", args.bench_sizes or settings.bench_sizes]
    cmd += ["--dtype", settings.bench_dtypes, "--rounds", str(settings.bench_rounds)]
    cmd += ["--round-time", str(settings.bench_round_time), "--no-plot", "--out", str(folder)]
    # The case in progress, the sparse check and the start-up (with its re-exec) fit in the margin.
    cmd += ["--time-budget", str(max(1.0, budget - 45.0))]
    cmd += ["--platform", args.platform] if args.platform else []
    cmd += ["--peers", peers] if peers else []
    losses = args.losses or settings.bench_losses
    cmd += ["--losses", losses] if losses else []
    log = out / "logs" / f"{name}.log"
    # PyTorch's peers share the device: leave it room.
    code, _ = _run(cmd, log, budget, _env({"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.5"}))
    return code, log


def bench_stage(args: argparse.Namespace, settings: Settings, out: Path, budget: float) -> dict[str, Any]:
    reason = _no_benchmarks()
    if reason:
        return {"status": "skipped", "message": reason}
    folder = out / "bench"
    start = time.perf_counter()
    peers = settings.bench_peers
    code, log = _bench_once(args, settings, folder, out, budget, peers, "bench")
    retried = None
    left = budget - (time.perf_counter() - start)
    if code is not None and code != 0 and (peers is None or "torch" in peers) and left > 60.0:
        # A process that crashed (PyTorch's and jax's CUDA libraries in one process, say) gets a
        # second run without the PyTorch peers in the time that is left.
        retried = f"the first run exited {code} ({_tail(log, 2)}); rerun without the PyTorch peers"
        code, log = _bench_once(args, settings, folder, out, left, "autodiff,optax,keras,floor", "bench-retry")
    seconds = time.perf_counter() - start
    result_path = folder / "bench.json"
    if code is None or code != 0 or not result_path.exists():
        why = f"stopped at its budget of {budget:.0f} s" if code is None else f"exit {code}"
        return {"status": "failed", "message": f"{why}: {_tail(log)}", "seconds": seconds}
    bench = json.loads(result_path.read_text())
    budget_skips = [s for s in bench["skipped"] if "time budget" in s["reason"]]
    errors = [(r["label"], name, msg) for r in bench["rows"] for name, msg in r["errors"].items()]
    disagree = [
        (r["label"], r["dtype"], name)
        for r in bench["rows"]
        for name, impl in r["impls"].items()
        if impl.get("agrees") is False
    ]
    message = f"{len(bench['rows'])} cases measured"
    if retried:
        message = f"{retried}; {message}"
    if budget_skips:
        message += f", {len(budget_skips)} not measured (time budget spent)"
    if errors:
        message += f", {len(errors)} implementations failed"
    if disagree:
        message += f", {len(disagree)} peers disagree with jaxloss"
    return {
        "status": "partial" if budget_skips or errors or retried else "ok",
        "message": message,
        "seconds": seconds,
        "table": (folder / "bench.txt").read_text(),
        "disagreements": disagree,
        "files": [str(folder / "bench.json"), str(folder / "bench.txt")],
        "result": {k: bench[k] for k in ("meta", "rows", "skipped", "sparse_memory", "targets", "notes")},
    }


def large_vocab_stage(args: argparse.Namespace, settings: Settings, out: Path, budget: float) -> dict[str, Any]:
    reason = _no_benchmarks()
    if reason:
        return {"status": "skipped", "message": reason}
    folder = out / "large_vocab"
    n, d, v = args.lce_shape or settings.lce
    cmd = [sys.executable, "-m", "benchmarks.large_vocab", "--n", str(n), "--d", str(d), "--v", str(v)]
    cmd += ["--dtype", settings.lce_dtype, "--rounds", str(settings.lce_rounds), "--out", str(folder)]
    cmd += ["--time-budget", str(max(1.0, budget - 10.0))]
    cmd += ["--platform", args.platform] if args.platform else []
    cmd += ["--impls", settings.lce_impls] if settings.lce_impls else []
    code, seconds = _run(cmd, out / "logs" / "large_vocab.log", budget, _env())
    result_path = folder / "large_vocab.json"
    if code is None or code != 0 or not result_path.exists():
        why = f"stopped at its budget of {budget:.0f} s" if code is None else f"exit {code}"
        return {"status": "failed", "message": f"{why}: {_tail(out / 'logs' / 'large_vocab.log')}", "seconds": seconds}
    record = json.loads(result_path.read_text())
    ran = [k for k, r in record["results"].items() if "median_s" in r]
    missing = {k: r.get("skipped") or r.get("error") for k, r in record["results"].items() if "median_s" not in r}
    status = "ok" if "jaxloss" in ran and not any("error" in r for r in record["results"].values()) else "partial"
    if "jaxloss" not in ran:
        status = "failed"
    return {
        "status": status,
        "message": f"measured {', '.join(ran) or 'nothing'}" + "".join(f"; {k}: {why}" for k, why in missing.items()),
        "seconds": seconds,
        "table": (folder / "large_vocab.txt").read_text(),
        "files": [str(result_path), str(folder / "large_vocab.txt")],
        "result": record,
    }


# ----------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------


def _device_line(report: dict[str, Any]) -> str:
    verify = report["stages"].get("verify", {})
    if verify.get("devices"):
        return ", ".join(f"{d['id']} ({d['kind']})" for d in verify["devices"])
    for stage in ("bench", "large-vocab"):
        meta = report["stages"].get(stage, {}).get("result", {}).get("meta")
        if meta:
            return f"{meta['device']} ({meta['device_kind']})"
    return "unknown (no stage reached the device)"


def _row_name(row: dict[str, Any]) -> str:
    def short(v: Any) -> str:
        return f"<{len(v)} values>" if isinstance(v, list) and len(v) > 4 else str(v)

    options = ",".join(f"{k}={short(v)}" for k, v in row["options"].items())
    return f"{row['loss']}[{options}]{row['example']}"


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v) or "-"
    missing = ", ".join(k for k, v in meta["versions"].items() if not v)
    lines = [
        f"# jaxloss accelerator report: {report['device']}",
        "",
        f"- command: `{meta['command']}` ({'finished' if report['finished'] else 'in progress or cut short'}; "
        f"{report['elapsed_s']:.0f} s of a {meta['time_budget_s']:.0f} s budget)",
        f"- started: {meta['started']}; jaxloss {meta['jaxloss']}"
        + (f" at commit {meta['git_commit']}" if meta["git_commit"] else ""),
        f"- devices: {report['device']}",
        f"- Python {meta['python']}; {versions}" + (f"; not installed: {missing}" if missing else ""),
        f"- host: {meta['host']['cpu']}, {meta['host']['cpu_count']} CPUs; {meta['host']['system']}",
    ]
    if meta["nvidia_smi"]:
        lines.append(f"- nvidia-smi: {meta['nvidia_smi']}")
    lines += ["", "| stage | status | budget | time | summary |", "| --- | --- | --- | --- | --- |"]
    for name in meta["stages"]:
        s = report["stages"].get(name, {"status": "not started", "message": ""})
        budget = f"{s['budget_s']:.0f} s" if "budget_s" in s else "-"
        took = f"{s['duration_s']:.0f} s" if "duration_s" in s else "-"
        lines.append(f"| {name} | {s['status']} | {budget} | {took} | {s['message']} |")
    verify = report["stages"].get("verify")
    if verify and "rows" in verify:
        lines += ["", "## Gradients: closed form against autodiff (`python -m jaxloss verify`)", ""]
        lines += ["| device, dtype | passed | failed |", "| --- | --- | --- |"]
        lines += [f"| {k} | {v['passed']} | {v['failed']} |" for k, v in sorted(verify["by_device_dtype"].items())]
        if verify["not_run"]:
            lines.append(f"\n{verify['not_run']} rows not run (time budget).")
        if verify["failures"]:
            lines += ["", "Failures:", ""]
            for r in verify["failures"]:
                detail = (
                    r.get("error") or f"max rel error {r['max_rel_error']:.2e}, max abs error {r['max_abs_error']:.2e}"
                )
                lines.append(f"- {_row_name(r)} on {r['device']} {r['dtype']}: {detail}")
        worst = sorted((r for r in verify["rows"] if "max_rel_error" in r), key=lambda r: -r["max_rel_error"])[:5]
        if worst:
            lines += ["", "Largest relative errors:", ""]
            lines += [
                f"- {r['loss']} {r['example']} {r['device']} {r['dtype']}: {r['max_rel_error']:.2e}" for r in worst
            ]
    for name, title in (("bench", "Benchmark (`python -m benchmarks`)"), ("large-vocab", "Large vocabulary")):
        stage = report["stages"].get(name)
        if stage and "table" in stage:
            lines += ["", f"## {title}", "", "```", stage["table"].rstrip(), "```"]
    lines += ["", f"Every figure is in `report.json` ({SCHEMA}); each stage's own outputs and logs are beside it."]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out: Path, start: float) -> None:
    report["elapsed_s"] = time.perf_counter() - start
    report["device"] = _device_line(report)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "report.md").write_text(markdown(report))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.worker == "verify":
        return verify_worker(args)
    start = time.perf_counter()
    settings = QUICK if args.quick else (CPU if args.platform == "cpu" else ACCELERATOR)
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    meta = environment(argv) | {"time_budget_s": args.time_budget, "stages": args.stages, "quick": args.quick}
    report: dict[str, Any] = {"schema": SCHEMA, "meta": meta, "stages": {}, "finished": False}
    runners = {"verify": verify_stage, "bench": bench_stage, "large-vocab": large_vocab_stage}
    write(report, out, start)
    for i, name in enumerate(args.stages):
        left = args.time_budget - RESERVE - (time.perf_counter() - start)
        share = 1.0 if i == len(args.stages) - 1 else SHARES[name]
        budget = left * share
        if budget < 20.0:
            report["stages"][name] = {"status": "skipped", "message": f"time budget spent ({max(left, 0):.0f} s left)"}
            write(report, out, start)
            continue
        print(f"report: {name} (budget {budget:.0f} s) ...", flush=True)
        stage_start = time.perf_counter()
        try:
            result = runners[name](args, settings, out, budget)
        except Exception as err:  # the report is still written
            result = {"status": "failed", "message": f"{type(err).__name__}: {err}"[:500]}
        result |= {"budget_s": budget, "duration_s": time.perf_counter() - stage_start}
        report["stages"][name] = result
        print(f"report: {name}: {result['status']}: {result['message']}", flush=True)
        write(report, out, start)
    report["finished"] = True
    write(report, out, start)
    print(f"wrote {out / 'report.md'} and {out / 'report.json'} ({time.perf_counter() - start:.0f} s)")
    return 1 if any(s["status"] == "failed" for s in report["stages"].values()) else 0
