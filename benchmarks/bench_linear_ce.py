"""linear_cross_entropy against the naive form and PyTorch: memory across N, peak memory, and time.

Three sections, each optional:

* memory (compile only, nothing allocated): XLA's own accounting,
  ``memory_analysis().temp_size_in_bytes``, of jitted value-and-gradient (w.r.t.
  hidden and weight) and of the forward alone, for linear_cross_entropy in both
  weight layouts (``(d, V)`` and ``(V, d)``) and for the naive form that holds the
  ``(N, V)`` logits (optax's integer-label softmax crossentropy of ``hidden @
  weight``), across N, beside the budgets: value-and-gradient temp <= chunk*V*4 +
  4*N*d + 4 MiB, forward temp <= chunk*V*4 + 8*N + 1 MiB.
* peak (fresh processes): each implementation runs value-and-gradient once in a
  fresh Python process; the figure is the growth of the resident set's peak
  (Linux ``VmHWM``, reset after the inputs exist and the program is compiled) over
  the resident set at that point: the temporaries and the gradients themselves, as
  the operating system sees them. PyTorch's chunked ``F.linear_cross_entropy``
  (``options=LinearCrossEntropyOptions()``, its ``(V, d)`` weight) and its
  reference path (``options=None``) run beside them when torch is installed.
* time: the median over interleaved rounds (every implementation once per round,
  in turn) of the per-round ratio to the naive form, for ``value_and_grad`` of the
  mean (fused path in both layouts, recompute path forced, PyTorch chunked), the
  VJP of ``reduction="none"`` (recompute path) and the forward alone. Wall-clock
  and process CPU time are both reported: on a shared machine the CPU time is the
  steadier of the two.

    python benchmarks/bench_linear_ce.py                       # CPU float32, the issue's sizes
    python benchmarks/bench_linear_ce.py --sections memory --ns 1024,8192,32768
    python benchmarks/bench_linear_ce.py --sections peak --peak-ns 2048,4096,8192
    python benchmarks/bench_linear_ce.py --sections time --time-ns 2048,4096 --time-v 32768 --rounds 5
    python benchmarks/bench_linear_ce.py --gpu                 # + bfloat16 N=8192 d=4096 V=128256 on a GPU

Writes ``<out>/lce.json`` and ``<out>/lce_memory.png`` (default ``results/lce``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss
from jaxloss._large_vocab import _linear_cross_entropy, default_chunk_size

MiB = 2**20
SECTIONS = ("memory", "peak", "time")
# "dv": the (d, V) weight layout; "vd": (V, d).
PEAK_IMPLS = ("naive", "jaxloss dv", "jaxloss vd", "torch chunked", "torch reference")


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a test extra
        return None
    return torch if hasattr(torch.nn.functional, "linear_cross_entropy") else None


# --------------------------------------------------------------------------
# The forms
# --------------------------------------------------------------------------


def naive_mean(y, h, w):
    logits = jnp.dot(h, w, preferred_element_type=jnp.float32)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def naive_per_token(y, h, w):
    logits = jnp.dot(h, w, preferred_element_type=jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def lce_mean(chunk: int | None, path: str = "auto", layout: str = "dv") -> Callable[..., jax.Array]:
    def loss(y, h, w):
        return _linear_cross_entropy(y, h, w, chunk_size=chunk, path=path, weight_layout=layout)

    return loss


def lce_per_token(chunk: int | None) -> Callable[..., jax.Array]:
    def loss(y, h, w):
        return jaxloss.linear_cross_entropy(y, h, w, chunk_size=chunk, reduction="none")

    return loss


def value_and_grad(loss):
    return jax.jit(jax.value_and_grad(lambda h, w, y: loss(y, h, w), (0, 1)))


def vjp_of_per_token(loss):
    def run(h, w, y, ct):
        out, pullback = jax.vjp(lambda h, w: loss(y, h, w), h, w)
        return out, pullback(ct)

    return jax.jit(run)


def forward(loss):
    return jax.jit(lambda h, w, y: loss(y, h, w))


def inputs(n: int, d: int, v: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """hidden (N, d), weight (d, V) and labels (N,), float32, the same in every process."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, d), dtype=np.float32)
    w = rng.standard_normal((d, v), dtype=np.float32) * 0.05
    y = rng.integers(0, v, n).astype(np.int32)
    return h, w, y


def torch_value_and_grad(torch, h: np.ndarray, w: np.ndarray, y: np.ndarray, chunked: bool):
    """PyTorch's F.linear_cross_entropy on its (V, d) weight: loss and backward, one call per run()."""
    th = torch.tensor(h, requires_grad=True)
    tw = torch.tensor(np.ascontiguousarray(w.T), requires_grad=True)
    ty = torch.tensor(y.astype(np.int64))
    options = torch.nn.LinearCrossEntropyOptions() if chunked else None

    def run():
        th.grad, tw.grad = None, None
        loss = torch.nn.functional.linear_cross_entropy(th, tw, ty, options=options)
        loss.backward()
        return loss.detach(), th.grad, tw.grad

    return run


# --------------------------------------------------------------------------
# Memory (compile only)
# --------------------------------------------------------------------------


def analyse(fn, n: int, d: int, v: int, dtype=jnp.float32, layout: str = "dv") -> dict[str, float]:
    spec = jax.ShapeDtypeStruct
    wshape = (d, v) if layout == "dv" else (v, d)
    compiled = fn.lower(spec((n, d), dtype), spec(wshape, dtype), spec((n,), jnp.int32)).compile()
    memory = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {
        "temp_bytes": int(memory.temp_size_in_bytes),
        "output_bytes": int(memory.output_size_in_bytes),
        "flops": float(cost.get("flops", float("nan"))),
    }


def memory_section(ns: list[int], d: int, v: int, chunk: int, naive: bool) -> list[dict[str, Any]]:
    rows = []
    for n in ns:
        row: dict[str, Any] = {"n": n, "d": d, "v": v, "chunk": chunk}
        row["budget_grad"] = chunk * v * 4 + 4 * n * d + 4 * MiB
        row["budget_forward"] = chunk * v * 4 + 8 * n + MiB
        for layout in ("dv", "vd"):
            row[f"lce_{layout}_grad"] = analyse(value_and_grad(lce_mean(chunk, layout=layout)), n, d, v, layout=layout)
            row[f"lce_{layout}_forward"] = analyse(forward(lce_mean(chunk, layout=layout)), n, d, v, layout=layout)
        if naive:
            row["naive_grad"] = analyse(value_and_grad(naive_mean), n, d, v)
            row["naive_forward"] = analyse(forward(naive_mean), n, d, v)
        rows.append(row)
        text = [f"N={n:6d}"]
        for layout in ("dv", "vd"):
            g, f = row[f"lce_{layout}_grad"]["temp_bytes"], row[f"lce_{layout}_forward"]["temp_bytes"]
            ok_g = "ok" if g <= row["budget_grad"] else "OVER"
            ok_f = "ok" if f <= row["budget_forward"] else "OVER"
            text.append(f"{layout}: grad {g / MiB:7.2f} MiB {ok_g}, fwd {f / MiB:6.2f} MiB {ok_f}")
        text.append(f"budgets grad {row['budget_grad'] / MiB:7.2f}, fwd {row['budget_forward'] / MiB:6.2f}")
        if naive:
            text.append(
                f"naive grad {row['naive_grad']['temp_bytes'] / MiB:8.1f}, fwd {row['naive_forward']['temp_bytes'] / MiB:7.1f}"
            )
        print("  ".join(text), flush=True)
    return rows


# --------------------------------------------------------------------------
# Peak resident memory (fresh processes)
# --------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_worker(impl: str, n: int, d: int, v: int) -> dict[str, Any]:
    """Run one implementation's value-and-gradient once, in this (fresh) process; return the peak's growth."""
    h, w, y = inputs(n, d, v)
    if impl.startswith("torch"):
        torch = _torch()
        if torch is None:
            return {"impl": impl, "skipped": "torch without F.linear_cross_entropy"}
        run = torch_value_and_grad(torch, h, w, y, chunked=impl == "torch chunked")
        del h, w, y  # torch holds its own copies
    else:
        layout = "vd" if impl == "jaxloss vd" else "dv"
        loss = naive_mean if impl == "naive" else lce_mean(None, layout=layout)
        args = (jnp.asarray(h), jnp.asarray(w if layout == "dv" else np.ascontiguousarray(w.T)), jnp.asarray(y))
        del h, w, y
        compiled = value_and_grad(loss).lower(*args).compile()

        def run():
            return jax.block_until_ready(compiled(*args))

    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current resident set
        f.write("5")
    base = _status_kib("VmRSS")
    start = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    del out
    return {"impl": impl, "n": n, "d": d, "v": v, "growth_mib": (peak - base) / 1024, "first_call_s": seconds}


def peak_section(ns: list[int], d: int, v: int, impls: tuple[str, ...] = PEAK_IMPLS) -> list[dict[str, Any]]:
    rows = []
    for n in ns:
        row: dict[str, Any] = {"n": n, "d": d, "v": v, "weight_mib": d * v * 4 / MiB, "logits_mib": n * v * 4 / MiB}
        for impl in impls:
            cmd = [sys.executable, os.path.abspath(__file__), "--peak-worker", impl, str(n), str(d), str(v)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:  # killed for memory, say: recorded, and the others still run
                row[impl] = None
                row[f"{impl} error"] = f"exit code {proc.returncode}: {proc.stderr[-2000:]}"
                print(f"  {impl} at N={n}: exit code {proc.returncode}", flush=True)
                continue
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            row[impl] = result.get("growth_mib")
        rows.append(row)
        parts = [f"{k} {row[k]:8.1f}" for k in impls if row[k] is not None]
        print(
            f"N={n:6d} d={d} V={v}: peak growth (MiB)  " + "  ".join(parts) + f"   (|W| {row['weight_mib']:.0f} MiB)",
            flush=True,
        )
    return rows


# --------------------------------------------------------------------------
# Time (interleaved rounds)
# --------------------------------------------------------------------------


def interleaved(impls: dict[str, Callable[[], Any]], rounds: int, baseline: str) -> dict[str, dict[str, float]]:
    for run in impls.values():  # compile and warm
        jax.block_until_ready(run())
    wall: dict[str, list[float]] = {k: [] for k in impls}
    cpu: dict[str, list[float]] = {k: [] for k in impls}
    for _ in range(rounds):
        for name, run in impls.items():
            w0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(run())
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    out = {}
    for name in impls:
        out[name] = {
            "wall_s": statistics.median(wall[name]),
            "cpu_s": statistics.median(cpu[name]),
            "wall_ratio": statistics.median(a / b for a, b in zip(wall[name], wall[baseline], strict=True)),
            "cpu_ratio": statistics.median(a / b for a, b in zip(cpu[name], cpu[baseline], strict=True)),
        }
    return out


def time_section(
    n: int,
    d: int,
    v: int,
    chunks: list[int | None],
    rounds: int,
    dtype=jnp.float32,
    seed: int = 0,
    only_mean: bool = False,
    with_torch: bool = True,
):
    h_np, w_np, y_np = inputs(n, d, v, seed)
    h, w, y = jnp.asarray(h_np, dtype), jnp.asarray(w_np, dtype), jnp.asarray(y_np)
    wt = jnp.asarray(np.ascontiguousarray(w_np.T), dtype)
    ct = jnp.asarray(np.random.default_rng(seed + 1).standard_normal(n), jnp.float32)
    results = {}

    def bind(fn, *args):
        return lambda: fn(*args)

    labels = {c: c or f"default={default_chunk_size(v)}" for c in chunks}
    scalar = {"naive": bind(value_and_grad(naive_mean), h, w, y)}
    for c in chunks:
        scalar[f"jaxloss (d, V) chunk={labels[c]}"] = bind(value_and_grad(lce_mean(c, "fused")), h, w, y)
        scalar[f"jaxloss (V, d) chunk={labels[c]}"] = bind(value_and_grad(lce_mean(c, "fused", "vd")), h, wt, y)
        if not only_mean:
            scalar[f"recompute chunk={labels[c]}"] = bind(value_and_grad(lce_mean(c, "recompute")), h, w, y)
    torch = _torch() if with_torch and dtype == jnp.float32 else None
    if torch is not None:
        scalar["torch chunked"] = torch_value_and_grad(torch, h_np, w_np, y_np, chunked=True)
    results["value_and_grad(mean)"] = interleaved(scalar, rounds, "naive")

    if not only_mean:
        per_token = {"naive": bind(vjp_of_per_token(naive_per_token), h, w, y, ct)}
        for c in chunks:
            per_token[f"recompute chunk={labels[c]}"] = bind(vjp_of_per_token(lce_per_token(c)), h, w, y, ct)
        results["vjp(reduction='none')"] = interleaved(per_token, rounds, "naive")

        fwd = {"naive": bind(forward(naive_mean), h, w, y)}
        for c in chunks:
            fwd[f"forward chunk={labels[c]}"] = bind(forward(lce_mean(c)), h, w, y)
        results["forward(mean)"] = interleaved(fwd, rounds, "naive")

    for section, table in results.items():
        print(f"\n{section}  N={n} d={d} V={v} {jnp.dtype(dtype).name}, median of {rounds} interleaved rounds")
        for name, r in table.items():
            print(
                f"  {name:34s} wall {r['wall_s'] * 1e3:9.1f} ms ({r['wall_ratio']:.3f}x)   "
                f"cpu {r['cpu_s'] * 1e3:9.1f} ms ({r['cpu_ratio']:.3f}x)",
                flush=True,
            )
        torch_row = table.get("torch chunked")
        if torch_row is not None:
            ours = next(k for k in table if k.startswith("jaxloss (d, V)"))
            print(f"  jaxloss (d, V) / torch chunked: wall {table[ours]['wall_s'] / torch_row['wall_s']:.3f}x")
    return results


# --------------------------------------------------------------------------
# Plot and entry point
# --------------------------------------------------------------------------


def plot(rows: list[dict[str, Any]], path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is an optional extra
        return None
    ns = [r["n"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for layout, marker in (("dv", "o"), ("vd", "^")):
        ax.plot(
            ns, [r[f"lce_{layout}_grad"]["temp_bytes"] / MiB for r in rows], f"{marker}-", label=f"{layout} value+grad"
        )
        ax.plot(
            ns, [r[f"lce_{layout}_forward"]["temp_bytes"] / MiB for r in rows], f"{marker}--", label=f"{layout} forward"
        )
    if "naive_grad" in rows[0]:
        ax.plot(ns, [r["naive_grad"]["temp_bytes"] / MiB for r in rows], "s-", label="naive value+grad")
        ax.plot(ns, [r["naive_forward"]["temp_bytes"] / MiB for r in rows], "s--", label="naive forward")
    ax.plot(ns, [r["budget_grad"] / MiB for r in rows], ":", color="gray", label="budget (value+grad)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("tokens N")
    ax.set_ylabel("XLA temporary memory (MiB)")
    r0 = rows[0]
    ax.set_title(
        f"linear_cross_entropy, d={r0['d']}, V={r0['v']}, chunk={r0['chunk']}, float32 ({jax.default_backend()})"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_linear_ce", description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default="memory,peak,time", help="comma-separated, of " + ", ".join(SECTIONS))
    parser.add_argument("--ns", default="1024,2048,4096,8192,16384,32768", help="token counts for the memory sweep")
    parser.add_argument("--mem-d", type=int, default=1024)
    parser.add_argument("--mem-v", type=int, default=65536)
    parser.add_argument("--mem-chunk", type=int, default=256)
    parser.add_argument("--no-naive-memory", action="store_true", help="skip compiling the naive form in the sweep")
    parser.add_argument("--peak-ns", default="2048,4096,8192", help="token counts for the fresh-process peaks")
    parser.add_argument("--peak-d", type=int, default=512)
    parser.add_argument("--peak-v", type=int, default=32768)
    parser.add_argument(
        "--peak-impls", default=",".join(PEAK_IMPLS), help="comma-separated, of " + ", ".join(PEAK_IMPLS)
    )
    parser.add_argument("--time-ns", default="2048", help="token counts to time, comma-separated")
    parser.add_argument("--time-d", type=int, default=512)
    parser.add_argument("--time-v", type=int, default=16384)
    parser.add_argument("--chunks", default="default", help="chunk sizes to time, comma-separated ('default' allowed)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only-mean", action="store_true", help="time value_and_grad of the mean only")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out of the timing")
    parser.add_argument("--gpu", action="store_true", help="also bfloat16 N=8192 d=4096 V=128256 when a GPU is present")
    parser.add_argument("--peak-worker", nargs=4, metavar=("IMPL", "N", "D", "V"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default="results/lce")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.peak_worker:
        impl, n, d, v = args.peak_worker
        print(json.dumps(peak_worker(impl, int(n), int(d), int(v))))
        return 0
    sections = set(args.sections.split(","))
    if sections - set(SECTIONS):
        raise SystemExit(f"--sections: unknown {sorted(sections - set(SECTIONS))}; choose from {', '.join(SECTIONS)}")
    os.makedirs(args.out, exist_ok=True)
    torch = _torch()
    record: dict[str, Any] = {
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        "torch": None if torch is None else torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    print(
        f"jax {jax.__version__}, torch {record['torch']} on {record['backend']} ({record['device']}), "
        f"{record['cpu_count']} CPUs, load average {record['load_average']}"
    )
    if "memory" in sections:
        ns = [int(x) for x in args.ns.split(",")]
        print(f"\nmemory (compile only): d={args.mem_d} V={args.mem_v} chunk={args.mem_chunk} float32")
        rows = memory_section(ns, args.mem_d, args.mem_v, args.mem_chunk, naive=not args.no_naive_memory)
        record["memory"] = rows
        png = plot(rows, os.path.join(args.out, "lce_memory.png"))
        if png:
            print(f"plot: {png}")
    if "peak" in sections:
        print("\npeak resident memory, fresh processes, value_and_grad of the mean, float32")
        impls = tuple(args.peak_impls.split(","))
        if set(impls) - set(PEAK_IMPLS):
            raise SystemExit(f"--peak-impls: unknown {sorted(set(impls) - set(PEAK_IMPLS))}")
        record["peak"] = peak_section([int(x) for x in args.peak_ns.split(",")], args.peak_d, args.peak_v, impls)
    if "time" in sections:
        chunks = [None if c == "default" else int(c) for c in args.chunks.split(",")]
        record["time"] = {
            str(n): time_section(
                n, args.time_d, args.time_v, chunks, args.rounds, only_mean=args.only_mean, with_torch=not args.no_torch
            )
            for n in (int(x) for x in args.time_ns.split(","))
        }
        if args.gpu and jax.default_backend() == "gpu":
            record["time_gpu_bf16"] = time_section(8192, 4096, 128256, [None], args.rounds, dtype=jnp.bfloat16)
        elif args.gpu:
            print("\n--gpu: no GPU present, skipped")
    path = os.path.join(args.out, "lce.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1, default=str)
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
