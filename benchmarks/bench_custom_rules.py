"""Does each loss's custom JVP rule pay? Time and bytes, with the rule against plain autodiff.

For every registered loss that carries its closed form as a ``jax.custom_jvp``
rule, compile jitted value-and-gradient (w.r.t. y_pred) twice: through the rule
(the public loss) and through plain autodiff of the same per-sample formula
(the same spec with the rule switched off). Rounds are interleaved; the
reported ratio is the median of per-round ratios (rule / autodiff, < 1 is
faster). XLA's cost_analysis bytes accessed are reported beside the time.

    python benchmarks/bench_custom_rules.py [--rows 8192] [--cols 1024] [--rounds 15]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxloss  # noqa: F401  (registers every loss)
from jaxloss._core import REGISTRY, _jit_forward


def inputs(name: str, options: dict, rows: int, cols: int, rng: np.random.Generator):
    if "sparse" in name or "generalized" in name:
        y_true = rng.integers(0, cols, rows).astype(np.int32)
    elif "categorical" in name:
        y_true = np.eye(cols, dtype=np.float32)[rng.integers(0, cols, rows)]
    else:
        y_true = rng.integers(0, 2, (rows, cols)).astype(np.float32)
    z = rng.normal(size=(rows, cols)).astype(np.float32)
    if not options.get("from_logits", True):
        z = np.exp(z) / np.exp(z).sum(-1, keepdims=True) if "categorical" in name else 1 / (1 + np.exp(-z))
    return jnp.asarray(y_true), jnp.asarray(z)


def compiled(spec, options, y_true, y_pred):
    static, numeric = spec._split(options)

    def objective(p, t):
        return _jit_forward(spec, "sum_over_batch_size", static, t, p, None, numeric)

    fn = jax.jit(jax.value_and_grad(objective))
    cost = fn.lower(y_pred, y_true).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return (lambda p: fn(p, y_true)), float(cost.get("bytes accessed", float("nan")))


CONFIGS = [
    ("huber", {}),
    ("log_cosh", {}),
    ("binary_crossentropy", {"from_logits": True}),
    ("binary_focal_crossentropy", {"from_logits": True}),
    ("categorical_crossentropy", {"from_logits": True}),
    ("categorical_focal_crossentropy", {"from_logits": True}),
    ("sparse_categorical_crossentropy", {"from_logits": True}),
    ("categorical_crossentropy", {"from_logits": False}),
    ("dice", {"axis": (1,)}),
]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--cols", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"jax {jax.__version__}, {jax.devices()[0].device_kind}, float32 {args.rows}x{args.cols}, value and grad")
    print(
        f"{'loss':<34} {'options':<20} {'rule ms':>8} {'autodiff ms':>11} {'ratio':>6} {'rule MB':>8} {'autodiff MB':>11}"
    )
    rows = []
    for name, options in CONFIGS:
        if name not in REGISTRY or not REGISTRY[name][0].custom_jvp:
            continue
        spec = REGISTRY[name][0]
        plain = dataclasses.replace(spec, custom_jvp=False)
        y_true, y_pred = inputs(name, options, args.rows, args.cols, rng)
        (f_rule, b_rule), (f_plain, b_plain) = (
            compiled(spec, options, y_true, y_pred),
            compiled(plain, options, y_true, y_pred),
        )
        for f in (f_rule, f_plain):
            jax.block_until_ready(f(y_pred))
        ratios, t_rule, t_plain = [], [], []
        for _ in range(args.rounds):
            times = []
            for f in (f_rule, f_plain):
                start = time.perf_counter()
                jax.block_until_ready(f(y_pred))
                times.append(time.perf_counter() - start)
            t_rule.append(times[0])
            t_plain.append(times[1])
            ratios.append(times[0] / times[1])
        row = {
            "loss": name,
            "options": options,
            "rule_ms": 1e3 * statistics.median(t_rule),
            "autodiff_ms": 1e3 * statistics.median(t_plain),
            "ratio": statistics.median(ratios),
            "rule_bytes": b_rule,
            "autodiff_bytes": b_plain,
        }
        rows.append(row)
        opts = ",".join(f"{k}={v}" for k, v in options.items())
        print(
            f"{name:<34} {opts:<20} {row['rule_ms']:>8.2f} {row['autodiff_ms']:>11.2f} {row['ratio']:>6.2f} "
            f"{b_rule / 1e6:>8.1f} {b_plain / 1e6:>11.1f}"
        )
    return rows


if __name__ == "__main__":
    main()
