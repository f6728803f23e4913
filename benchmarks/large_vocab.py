"""``linear_cross_entropy`` at LLM shapes: time and peak device memory against its peers.

Value and gradient (with respect to the hidden states and the weight) of the mean
token crossentropy of ``hidden @ weight`` at ``N`` tokens, width ``d`` and
vocabulary ``V`` (by default bfloat16, N=8192, d=4096, V=128256), for:

- ``jaxloss``: ``jaxloss.linear_cross_entropy(labels, hidden, weight)``, weight ``(d, V)``;
- ``naive``: the XLA form that holds the ``(N, V)`` float32 logits (``naive_mean`` of
  ``benchmarks/bench_linear_ce.py``: optax's integer-label softmax crossentropy of
  ``hidden @ weight``);
- ``liger``: Liger Kernel's ``liger_fused_linear_cross_entropy`` (PyTorch and Triton,
  CUDA only), weight ``(V, d)``; from the wheel in ``tools/wheels`` when it is not installed;
- ``torch``: PyTorch's chunked ``F.linear_cross_entropy``
  (``options=LinearCrossEntropyOptions()``), where this PyTorch has it;
- ``torch_naive``: PyTorch's ``F.cross_entropy(hidden @ weight.T, labels)``.

Each implementation runs in a fresh process (so that one's memory, or one's
failure, cannot touch another's figures): its inputs are drawn on the device
from the same distributions, then it is compiled (or warmed) and called
``--rounds`` times; the figure is the median call. Peak memory is the growth of
the device allocator's peak over what the inputs hold (``memory_stats`` for JAX,
``torch.cuda.max_memory_allocated`` for PyTorch): temporaries plus the gradients.
Where the device keeps no statistics (CPU), XLA's plan is given instead (temp
plus output bytes of ``memory_analysis``). Outputs: ``large_vocab.json`` and
``large_vocab.txt`` in ``--out``.

    python -m benchmarks.large_vocab                                  # the LLM shape, on the default device
    python -m benchmarks.large_vocab --platform cpu --n 512 --d 128 --v 4096 --dtype float32
"""

from __future__ import annotations

import argparse
import atexit
import functools
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

IMPLS = ("jaxloss", "naive", "liger", "torch", "torch_naive")
JAX_IMPLS = ("jaxloss", "naive")
WHEELS = Path(__file__).resolve().parents[1] / "tools" / "wheels"
MiB = 2**20
# The targets, at the LLM shape on a GPU: jaxloss at least 1.2x faster than the naive form
# with at most 1/8 of its peak memory, and within 1.3x of Liger's time.
TARGETS = {"speedup_vs_naive": 1.2, "memory_vs_naive": 1 / 8, "time_vs_liger": 1.3}
WEIGHT_SCALE = 0.02  # logits of unit order at d = 4096, as in a trained head


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.large_vocab",
        description="linear_cross_entropy at LLM shapes: time and peak device memory against its peers.",
    )
    parser.add_argument("--platform", choices=["cpu", "gpu", "tpu"], default=None, help="default: jax's default")
    parser.add_argument("--n", type=int, default=8192, help="tokens (default 8192)")
    parser.add_argument("--d", type=int, default=4096, help="hidden width (default 4096)")
    parser.add_argument("--v", type=int, default=128256, help="vocabulary (default 128256)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32", "float16"])
    parser.add_argument("--rounds", type=int, default=10, help="timed calls per implementation (default 10)")
    parser.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    parser.add_argument("--time-budget", type=float, default=None, help="seconds for all implementations")
    parser.add_argument("--impl-timeout", type=float, default=300.0, help="seconds for one implementation's process")
    parser.add_argument("--wheels", default=str(WHEELS), help="folder of wheels for peers that are not installed")
    parser.add_argument("--out", default="results/large_vocab")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    unknown = sorted(set(args.impls) - set(IMPLS))
    if unknown:
        parser.error(f"--impls: unknown {unknown}; choose from {', '.join(IMPLS)}")
    return args


# ----------------------------------------------------------------------------
# Workers: one implementation, in this (fresh) process
# ----------------------------------------------------------------------------


def _median_call(run, rounds: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def jax_worker(impl: str, args: argparse.Namespace) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    device = jax.devices(args.platform)[0] if args.platform else jax.devices()[0]
    dtype = jnp.dtype(args.dtype)
    n, d, v = args.n, args.d, args.v
    if impl == "jaxloss":
        import jaxloss

        loss = getattr(jaxloss, "linear_cross_entropy", None)
        if loss is None:
            return {"skipped": "this jaxloss does not export linear_cross_entropy"}
        call = "jaxloss.linear_cross_entropy(labels, hidden, weight)"
        mean = loss
    else:
        import optax

        call = "optax.softmax_cross_entropy_with_integer_labels(hidden @ weight, labels).mean()"

        def mean(y, h, w):  # pyright: ignore[reportRedeclaration]
            # bench_linear_ce.naive_mean's form, written here: that module reaches into jaxloss's
            # private modules, and a change there must not take this baseline with it.
            logits = jnp.dot(h, w, preferred_element_type=jnp.float32)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

    rows = math.gcd(d, 128)

    @jax.jit
    def draw(key):
        kh, kw, ky = jax.random.split(key, 3)
        # The weight block by block: no float32 copy of it is ever held.
        blocks = jax.random.split(kw, d // rows)
        w = jax.lax.map(lambda k: (WEIGHT_SCALE * jax.random.normal(k, (rows, v))).astype(dtype), blocks)
        h = jax.random.normal(kh, (n, d)).astype(dtype)
        return jax.random.randint(ky, (n,), 0, v), h, w.reshape(d, v)

    with jax.default_device(device):
        y, h, w = jax.block_until_ready(draw(jax.random.key(args.seed)))
        step = jax.jit(jax.value_and_grad(lambda h, w, y: mean(y, h, w), (0, 1)))
        start = time.perf_counter()
        compiled = step.lower(h, w, y).compile()
        compile_s = time.perf_counter() - start
        stats_before = device.memory_stats()

        def run():
            return jax.block_until_ready(compiled(h, w, y))

        start = time.perf_counter()
        value, _ = run()
        first_s = time.perf_counter() - start
        median_s, times = _median_call(run, args.rounds)
        stats_after = device.memory_stats()
    plan = compiled.memory_analysis()
    out: dict[str, Any] = {
        "call": f"jax.value_and_grad(({call}), (hidden, weight)), jitted",
        "library": f"jax {jax.__version__}",
        "device": f"{device.platform}:{device.id} ({getattr(device, 'device_kind', device.platform)})",
        "value": float(value),
        "compile_s": compile_s,
        "first_call_s": first_s,
        "median_s": median_s,
        "times_s": times,
    }
    if plan is not None:
        out["xla_temp_bytes"] = int(plan.temp_size_in_bytes)
        out["xla_output_bytes"] = int(plan.output_size_in_bytes)
    if stats_before and stats_after and "peak_bytes_in_use" in stats_after:
        out["peak_bytes"] = int(stats_after["peak_bytes_in_use"]) - int(stats_before["bytes_in_use"])
        out["peak_source"] = "allocator peak over the inputs (memory_stats)"
    elif plan is not None:
        out["peak_bytes"] = out["xla_temp_bytes"] + out["xla_output_bytes"]
        out["peak_source"] = "XLA's plan: temp + output bytes (the device keeps no statistics)"
    return out


def _extracted_wheel(folder: Path, distribution: str) -> str | None:
    """Unpack ``distribution``'s wheel from ``folder`` into a temporary folder and put it on
    ``sys.path`` (unpacked, not zipimported: Triton reads its kernels' source files)."""
    wheels = sorted(folder.glob(f"{distribution}-*.whl"))
    if not wheels:
        return None
    target = Path(tempfile.mkdtemp(prefix=f"{distribution}-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    with zipfile.ZipFile(wheels[-1]) as archive:
        archive.extractall(target)
    sys.path.insert(0, str(target))
    return wheels[-1].name


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def load_liger(wheels: Path) -> tuple[Any, str]:
    """Liger's functional fused linear crossentropy and where it came from; raises ImportError."""
    origin = "installed"
    if importlib.util.find_spec("liger_kernel") is None:
        used = [_extracted_wheel(wheels, "liger_kernel")]
        if importlib.util.find_spec("packaging") is None:  # Liger's one dependency beyond torch and triton
            used.append(_extracted_wheel(wheels, "packaging"))
        if used[0] is None:
            raise ImportError(f"liger-kernel is not installed and {wheels} holds no liger_kernel wheel")
        origin = "from " + ", ".join(u for u in used if u)
    from liger_kernel.transformers.functional import (  # pyright: ignore[reportMissingImports]
        liger_fused_linear_cross_entropy,
    )

    return liger_fused_linear_cross_entropy, origin


def torch_worker(impl: str, args: argparse.Namespace) -> dict[str, Any]:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {"skipped": "torch is not installed"}
    cuda = args.platform != "cpu" and torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = getattr(torch, args.dtype)
    n, d, v = args.n, args.d, args.v
    origin = f"torch {torch.__version__}"
    if impl == "liger":
        if not cuda:
            return {"skipped": "Liger Kernel runs on CUDA only (Triton GPU kernels)"}
        try:
            liger, where = load_liger(Path(args.wheels))
        except Exception as err:  # a missing or broken peer is reported, not fatal
            return {"skipped": f"Liger Kernel not importable: {type(err).__name__}: {err}"[:300]}
        origin += f", liger-kernel {_version('liger_kernel')} ({where})"
        call = "liger_fused_linear_cross_entropy(hidden, weight, labels)"
        loss = liger
    elif impl == "torch":
        if not hasattr(F, "linear_cross_entropy") or not hasattr(torch.nn, "LinearCrossEntropyOptions"):
            return {"skipped": f"torch {torch.__version__} has no F.linear_cross_entropy"}
        options = torch.nn.LinearCrossEntropyOptions()
        call = "F.linear_cross_entropy(hidden, weight, labels, options=LinearCrossEntropyOptions())"
        loss = functools.partial(F.linear_cross_entropy, options=options)  # pyright: ignore[reportAssignmentType]
    else:
        call = "F.cross_entropy(hidden @ weight.T, labels)"

        def loss(h, w, y):  # pyright: ignore[reportRedeclaration]
            return F.cross_entropy(h @ w.T, y)

    generator = torch.Generator(device=device).manual_seed(args.seed)
    h = torch.randn(n, d, device=device, generator=generator, dtype=dtype).requires_grad_(True)
    w = torch.empty(v, d, device=device, dtype=dtype)
    for block in torch.split(w, 4096):  # no float32 copy of the weight
        block.copy_(WEIGHT_SCALE * torch.randn(block.shape, device=device, generator=generator))
    w.requires_grad_(True)
    y = torch.randint(0, v, (n,), device=device, generator=generator)

    def run():
        h.grad, w.grad = None, None
        value = loss(h, w, y)
        value.backward()
        if cuda:
            torch.cuda.synchronize()
        return value.detach()

    base = 0
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    value = run()  # Triton compiles its kernels here
    first_s = time.perf_counter() - start
    median_s, times = _median_call(run, args.rounds)
    out: dict[str, Any] = {
        "call": f"{call}; .backward()",
        "library": origin,
        "device": f"{device.type}" + (f" ({torch.cuda.get_device_name()})" if cuda else ""),
        "value": float(value.float()),
        "first_call_s": first_s,
        "median_s": median_s,
        "times_s": times,
    }
    if cuda:
        out["peak_bytes"] = int(torch.cuda.max_memory_allocated()) - int(base)
        out["peak_source"] = "allocator peak over the inputs (torch.cuda.max_memory_allocated)"
    return out


def worker(impl: str, args: argparse.Namespace) -> dict[str, Any]:
    try:
        return (jax_worker if impl in JAX_IMPLS else torch_worker)(impl, args)
    except Exception as err:  # out of memory, a peer's bug: reported, not fatal
        return {"error": f"{type(err).__name__}: {err}"[:1000]}


# ----------------------------------------------------------------------------
# The driver: every implementation in its own process, within the budget
# ----------------------------------------------------------------------------


def _worker_env(impl: str) -> dict[str, str]:
    env = dict(os.environ)
    if impl in JAX_IMPLS:
        # Allocate as needed (not 75% of the device up front), so that the allocator's
        # peak is the program's own.
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    root = str(Path(__file__).resolve().parents[1])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return env


def run_impl(impl: str, argv: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.large_vocab", *argv, "--worker", impl]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=_worker_env(impl), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout:.0f} s (its share of the time budget)"}
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)[:1000], "process_s": wall}
    return {**json.loads(lines[-1]), "process_s": wall}


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """jaxloss's time and memory against each peer, and the targets they decide."""
    ours = results.get("jaxloss", {})
    ratios: dict[str, dict[str, float]] = {}
    for name, r in results.items():
        if name == "jaxloss" or "median_s" not in r or "median_s" not in ours:
            continue
        ratios[name] = {"time": ours["median_s"] / r["median_s"]}
        if ours.get("peak_bytes") and r.get("peak_bytes"):
            ratios[name]["memory"] = ours["peak_bytes"] / r["peak_bytes"]
    targets = []
    # The targets are for a GPU at the LLM shape; elsewhere the figures are shown without verdicts.
    on_gpu = str(ours.get("device", "")).startswith("gpu")
    naive, liger = (ratios.get(k, {}) if on_gpu else {} for k in ("naive", "liger"))
    if "time" in naive:
        speedup = 1 / naive["time"]
        targets.append(
            {
                "target": ">= 1.2x faster than naive XLA",
                "measured": speedup,
                "met": speedup >= TARGETS["speedup_vs_naive"],
            }
        )
    if "memory" in naive:
        targets.append(
            {
                "target": "<= 1/8 of naive XLA's peak memory",
                "measured": naive["memory"],
                "met": naive["memory"] <= TARGETS["memory_vs_naive"],
            }
        )
    if "time" in liger:
        targets.append(
            {
                "target": "within 1.3x of Liger's time",
                "measured": liger["time"],
                "met": liger["time"] <= TARGETS["time_vs_liger"],
            }
        )
    values = [r["value"] for r in results.values() if "value" in r]
    spread = (max(values) - min(values)) / max(abs(statistics.median(values)), 1e-30) if values else None
    return {"ratios": ratios, "targets": targets, "value_spread": spread}


def text(record: dict[str, Any]) -> str:
    shape = record["shape"]
    lines = [
        f"linear_cross_entropy at N={shape['n']} d={shape['d']} V={shape['v']} {record['dtype']}: value and gradient "
        f"(hidden, weight), median of {record['rounds']} calls, each implementation in a fresh process",
        f"{'impl':<12} {'time':>10} {'jaxloss/x':>9} {'peak':>11} {'jaxloss/x':>9} {'loss':>9}  call",
    ]
    ratios = record["summary"]["ratios"]
    for name, r in record["results"].items():
        if "median_s" not in r:
            lines.append(f"{name:<12} {r.get('skipped') or r.get('error')}")
            continue
        peak = f"{r['peak_bytes'] / MiB:.0f} MiB" if r.get("peak_bytes") is not None else "-"
        rt = {"time": 1.0, "memory": 1.0} if name == "jaxloss" else ratios.get(name, {})
        time_ratio = f"{rt['time']:.3f}" if "time" in rt else "-"
        memory_ratio = f"{rt['memory']:.3f}" if "memory" in rt else "-"
        lines.append(
            f"{name:<12} {r['median_s'] * 1e3:>7.2f} ms {time_ratio:>9} {peak:>11} {memory_ratio:>9} "
            f"{r['value']:>9.4f}  {r['call']}"
        )
    sources = sorted({r["peak_source"] for r in record["results"].values() if "peak_source" in r})
    lines += [f"peak: {s}" for s in sources]
    spread = record["summary"]["value_spread"]
    if spread is not None:
        lines.append(f"losses agree within {spread:.2%} (inputs drawn per process from the same distributions)")
    for t in record["summary"]["targets"]:
        lines.append(f"target {t['target']}: {t['measured']:.3f} {'met' if t['met'] else 'MISSED'}")
    if not record["summary"]["targets"]:
        lines.append("targets: not evaluated (they are for a GPU at the LLM shape)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return 0
    start = time.perf_counter()
    passed = _without_options(argv, ("--out", "--time-budget", "--impls", "--impl-timeout"))
    results: dict[str, dict[str, Any]] = {}
    for impl in args.impls:
        left = None if args.time_budget is None else args.time_budget - (time.perf_counter() - start)
        if left is not None and left < 5:
            results[impl] = {"skipped": f"time budget of {args.time_budget:g} s spent"}
            continue
        results[impl] = run_impl(impl, passed, args.impl_timeout if left is None else min(left, args.impl_timeout))
        r = results[impl]
        status = f"{r['median_s'] * 1e3:.2f} ms" if "median_s" in r else (r.get("skipped") or r.get("error"))
        print(f"{impl}: {status}", flush=True)
    record = {
        "schema": "jaxloss-large-vocab/1",
        "shape": {"n": args.n, "d": args.d, "v": args.v},
        "dtype": args.dtype,
        "rounds": args.rounds,
        "platform": args.platform,
        "python": platform.python_version(),
        "command": "python -m benchmarks.large_vocab " + " ".join(argv),
        "results": results,
        "summary": summarize(results),
        "duration_s": time.perf_counter() - start,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = text(record)
    print(report)
    (out / "large_vocab.txt").write_text(report + "\n")
    (out / "large_vocab.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {out / 'large_vocab.json'}, {out / 'large_vocab.txt'}")
    return 0


def _without_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """``argv`` less the driver's own options (``--name value`` or ``--name=value``)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in names:
            skip = True
            continue
        if any(a.startswith(n + "=") for n in names):
            continue
        out.append(a)
    return out


if __name__ == "__main__":
    sys.exit(main())
