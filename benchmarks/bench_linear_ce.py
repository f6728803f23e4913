"""linear_cross_entropy against the naive form: memory across N, and value-and-gradient time.

Memory is XLA's own accounting of the compiled programs (compile only, nothing
is allocated): ``memory_analysis().temp_size_in_bytes`` of jitted
value-and-gradient (w.r.t. hidden and weight) and of the forward alone, and
``cost_analysis()["bytes accessed"]``, for linear_cross_entropy and for the naive
form that holds the ``(N, V)`` logits (optax's integer-label softmax
crossentropy of ``hidden @ weight``), across N (XLA's cost analysis counts a
while loop's body once, so linear_cross_entropy's bytes are per chunk plus the
code outside the scan, not a total). The issue's budgets are printed
beside them: value-and-gradient temp <= |weight| + chunk*V*4 + 4*N*d + 1 MiB,
forward temp <= chunk*V*4 + 8*N + 1 MiB.

Time is the median over interleaved rounds (every implementation once per
round, in turn) of the per-round ratio to the naive form, for:
``value_and_grad`` of the mean (the fused path, and the recompute path forced),
the VJP of ``reduction="none"`` with an arbitrary cotangent (recompute path),
and the forward alone. Wall-clock and process CPU time are both reported: on a
shared machine the CPU time is the steadier of the two.

    python benchmarks/bench_linear_ce.py                       # CPU float32, the issue's sizes
    python benchmarks/bench_linear_ce.py --memory-only --ns 1024,8192,32768
    python benchmarks/bench_linear_ce.py --time-only --rounds 9 --chunks 256,512,1024
    python benchmarks/bench_linear_ce.py --gpu                 # + bfloat16 N=8192 d=4096 V=128256 on a GPU

Writes ``<out>/lce.json`` and ``<out>/lce_memory.png`` (default ``results/lce``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


# --------------------------------------------------------------------------
# The two forms
# --------------------------------------------------------------------------


def naive_mean(y, h, w):
    logits = jnp.dot(h, w, preferred_element_type=jnp.float32)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def naive_per_token(y, h, w):
    logits = jnp.dot(h, w, preferred_element_type=jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def lce_mean(chunk: int | None, path: str = "auto") -> Callable[..., jax.Array]:
    def loss(y, h, w):
        return _linear_cross_entropy(y, h, w, chunk_size=chunk, path=path)

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


# --------------------------------------------------------------------------
# Memory (compile only)
# --------------------------------------------------------------------------


def analyse(fn, n: int, d: int, v: int, dtype=jnp.float32) -> dict[str, float]:
    spec = jax.ShapeDtypeStruct
    compiled = fn.lower(spec((n, d), dtype), spec((d, v), dtype), spec((n,), jnp.int32)).compile()
    memory = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {
        "temp_bytes": int(memory.temp_size_in_bytes),
        "bytes_accessed": float(cost.get("bytes accessed", float("nan"))),
        "flops": float(cost.get("flops", float("nan"))),
    }


def memory_section(ns: list[int], d: int, v: int, chunk: int, naive: bool) -> list[dict[str, Any]]:
    rows = []
    for n in ns:
        row: dict[str, Any] = {"n": n, "d": d, "v": v, "chunk": chunk}
        row["budget_grad"] = d * v * 4 + chunk * v * 4 + 4 * n * d + MiB
        row["budget_forward"] = chunk * v * 4 + 8 * n + MiB
        row["lce_grad"] = analyse(value_and_grad(lce_mean(chunk)), n, d, v)
        row["lce_forward"] = analyse(forward(lce_mean(chunk)), n, d, v)
        if naive:
            row["naive_grad"] = analyse(value_and_grad(naive_mean), n, d, v)
            row["naive_forward"] = analyse(forward(naive_mean), n, d, v)
        rows.append(row)
        ok_g = row["lce_grad"]["temp_bytes"] <= row["budget_grad"]
        ok_f = row["lce_forward"]["temp_bytes"] <= row["budget_forward"]
        naive_txt = (
            f"  naive grad {row['naive_grad']['temp_bytes'] / MiB:9.1f} MiB, fwd {row['naive_forward']['temp_bytes'] / MiB:8.1f} MiB"
            if naive
            else ""
        )
        print(
            f"N={n:6d}  lce grad temp {row['lce_grad']['temp_bytes'] / MiB:8.1f} MiB (budget {row['budget_grad'] / MiB:7.1f}, "
            f"{'ok' if ok_g else 'OVER'}), fwd {row['lce_forward']['temp_bytes'] / MiB:6.1f} MiB "
            f"(budget {row['budget_forward'] / MiB:6.1f}, {'ok' if ok_f else 'OVER'}), "
            f"bytes accessed (scan body once) {row['lce_grad']['bytes_accessed'] / 2**30:6.2f} GiB" + naive_txt,
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


def time_section(n: int, d: int, v: int, chunks: list[int | None], rounds: int, dtype=jnp.float32, seed: int = 0):
    rng = np.random.default_rng(seed)
    h = jnp.asarray(rng.standard_normal((n, d)), dtype)
    w = jnp.asarray(rng.standard_normal((d, v)) * 0.05, dtype)
    y = jnp.asarray(rng.integers(0, v, n), jnp.int32)
    ct = jnp.asarray(rng.standard_normal(n), jnp.float32)
    results = {}

    def bind(fn, *args):
        return lambda: fn(*args)

    labels = {c: c or f"default={default_chunk_size(v)}" for c in chunks}
    scalar = {"naive": bind(value_and_grad(naive_mean), h, w, y)}
    for c in chunks:
        scalar[f"fused chunk={labels[c]}"] = bind(value_and_grad(lce_mean(c, "fused")), h, w, y)
        scalar[f"recompute chunk={labels[c]}"] = bind(value_and_grad(lce_mean(c, "recompute")), h, w, y)
    results["value_and_grad(mean)"] = interleaved(scalar, rounds, "naive")

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
                f"  {name:32s} wall {r['wall_s'] * 1e3:9.1f} ms ({r['wall_ratio']:.3f}x)   "
                f"cpu {r['cpu_s'] * 1e3:9.1f} ms ({r['cpu_ratio']:.3f}x)",
                flush=True,
            )
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
    ax.plot(ns, [r["lce_grad"]["temp_bytes"] / MiB for r in rows], "o-", label="linear_cross_entropy value+grad")
    ax.plot(ns, [r["lce_forward"]["temp_bytes"] / MiB for r in rows], "o--", label="linear_cross_entropy forward")
    if "naive_grad" in rows[0]:
        ax.plot(ns, [r["naive_grad"]["temp_bytes"] / MiB for r in rows], "s-", label="naive value+grad")
        ax.plot(ns, [r["naive_forward"]["temp_bytes"] / MiB for r in rows], "s--", label="naive forward")
    ax.plot(ns, [r["budget_grad"] / MiB for r in rows], ":", color="gray", label="budget (value+grad)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("tokens N")
    ax.set_ylabel("XLA temporary memory (MiB)")
    r0 = rows[0]
    ax.set_title(f"d={r0['d']}, V={r0['v']}, chunk={r0['chunk']}, float32 ({jax.default_backend()})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_linear_ce", description=__doc__.split("\n")[0])
    parser.add_argument("--ns", default="1024,2048,4096,8192,16384,32768", help="token counts for the memory sweep")
    parser.add_argument("--mem-d", type=int, default=1024)
    parser.add_argument("--mem-v", type=int, default=65536)
    parser.add_argument("--mem-chunk", type=int, default=256)
    parser.add_argument("--no-naive-memory", action="store_true", help="skip compiling the naive form in the sweep")
    parser.add_argument("--time-n", type=int, default=2048)
    parser.add_argument("--time-d", type=int, default=512)
    parser.add_argument("--time-v", type=int, default=16384)
    parser.add_argument("--chunks", default="default", help="chunk sizes to time, comma-separated ('default' allowed)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--time-only", action="store_true")
    parser.add_argument("--gpu", action="store_true", help="also bfloat16 N=8192 d=4096 V=128256 when a GPU is present")
    parser.add_argument("--out", default="results/lce")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    record: dict[str, Any] = {
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    print(f"jax {jax.__version__} on {record['backend']} ({record['device']}), load average {record['load_average']}")
    if not args.time_only:
        ns = [int(x) for x in args.ns.split(",")]
        print(f"\nmemory (compile only): d={args.mem_d} V={args.mem_v} chunk={args.mem_chunk} float32")
        rows = memory_section(ns, args.mem_d, args.mem_v, args.mem_chunk, naive=not args.no_naive_memory)
        record["memory"] = rows
        png = plot(rows, os.path.join(args.out, "lce_memory.png"))
        if png:
            print(f"plot: {png}")
    if not args.memory_only:
        chunks = [None if c == "default" else int(c) for c in args.chunks.split(",")]
        record["time"] = time_section(args.time_n, args.time_d, args.time_v, chunks, args.rounds)
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
