"""``python -m jaxloss verify``: closed-form against autodiff gradients on local devices.

For every registered loss and every example option set it declares, on every
local device (or one ``--platform``), in each ``--dtype``, compare
``analytic_grad`` with autodiff (``jax.grad``; of the plain per-sample formula
for the losses that carry the closed form as their ``custom_jvp`` rule) on inputs
drawn from the loss's domains, and report the max absolute and max relative
error. Exit status 1 when any row fails.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._core import REGISTRY, Example, LossSpec
from ._gradients import analytic_grad, grad
from ._inputs import draw_inputs
from ._registry import resolve


def rows() -> list[tuple[LossSpec, Example]]:
    """Every registered loss with every example it declares."""
    return [(spec, example) for _, spec in sorted(REGISTRY.items()) for example in spec.examples]


# Closed form and autodiff differ only by float round-off; bfloat16 gradients are
# rounded to 8 bits of mantissa, so they agree to about 2**-8 of the largest entry.
TOLERANCE = {"float32": 1e-4, "bfloat16": 1.6e-2, "float16": 2e-3}


def _cast(x: np.ndarray, dtype: str, device) -> jax.Array:
    arr = jnp.asarray(x) if np.issubdtype(x.dtype, np.integer) else jnp.asarray(x, dtype)
    return jax.device_put(arr, device)


def autodiff_grad(loss: str, **options: Any) -> Callable[..., jax.Array]:
    """``(y_true, y_pred) -> d loss / d y_pred`` by ``jax.grad``, with no hand-written rule.

    For a loss that carries its closed form as a ``custom_jvp`` rule, ``jaxloss.grad``
    would run that very rule, so the comparison would check the closed form against
    itself: differentiate the plain per-sample formula through the shared reduction
    instead. Other losses: ``jaxloss.grad``, which is already plain autodiff.
    """
    spec = resolve(loss)
    if not spec.custom_jvp:
        return grad(loss, **options)
    reduction = options.get("reduction", "sum_over_batch_size")
    opts = spec.check_options({k: v for k, v in options.items() if k != "reduction"}, reduction)
    static, numeric = spec.split(opts)
    merged = {**dict(static), **numeric}

    def objective(y_pred, y_true):
        # With reduction="none", the gradient of the sum, as jaxloss.grad takes it.
        return jnp.sum(spec.plain_forward(reduction, y_true, y_pred, None, merged))

    g = jax.jit(jax.grad(objective))
    return lambda y_true, y_pred: g(jnp.asarray(y_pred), jnp.asarray(y_true))


def _direct_grads(spec: LossSpec, example: Example, device, dtype: str, seed: int):
    """A loss that computes itself: its gradients with respect to every float array, by its own
    rule, against autodiff of its plain reference form."""
    y_true, *floats = example.draw(np.random.default_rng(seed))  # type: ignore[misc]
    floats = [_cast(np.asarray(x, np.float32), dtype, device) for x in floats]
    y = jax.device_put(jnp.asarray(y_true), device)
    options = dict(example.options)

    def grads(fn):
        def total(*arrays):
            return jnp.sum(fn(y, *arrays, **options))

        return jax.jit(jax.grad(total, argnums=tuple(range(len(floats)))))(*floats)

    closed = np.concatenate([np.asarray(g, np.float64).ravel() for g in grads(spec.function)])
    auto = np.concatenate([np.asarray(g, np.float64).ravel() for g in grads(spec.reference)])
    return closed, auto


def verify_row(spec: LossSpec, example: Example, device, dtype: str, seed: int = 0) -> dict[str, Any]:
    if spec.direct:
        closed, auto = _direct_grads(spec, example, device, dtype, seed)
        return _row(spec, example, device, dtype, closed, auto)
    y_true, y_pred = draw_inputs(spec, example, np.random.default_rng(seed))
    y_true = np.asarray(y_true)
    if not np.issubdtype(y_true.dtype, np.integer):
        y_true = y_true.astype(np.float32)
    yt, yp = _cast(y_true, dtype, device), _cast(np.asarray(y_pred, np.float32), dtype, device)
    options = dict(example.options)
    closed = np.asarray(analytic_grad(spec.name, **options)(yt, yp), np.float64)
    auto = np.asarray(autodiff_grad(spec.name, **options)(yt, yp), np.float64)
    return _row(spec, example, device, dtype, closed, auto)


def _row(spec: LossSpec, example: Example, device, dtype: str, closed: np.ndarray, auto: np.ndarray) -> dict[str, Any]:
    options = dict(example.options)
    err = np.abs(closed - auto)
    scale = max(float(np.max(np.abs(auto))), np.finfo(np.float32).tiny) if auto.size else 1.0
    max_abs = float(np.max(err)) if err.size else 0.0
    max_rel = max_abs / scale
    finite = bool(np.all(np.isfinite(closed)) and np.all(np.isfinite(auto)))
    return {
        "loss": spec.name,
        "example": example.label,
        "options": {k: _jsonable(v) for k, v in options.items()},
        "device": f"{device.platform}:{device.id}",
        "device_kind": getattr(device, "device_kind", device.platform),
        "dtype": dtype,
        "max_abs_error": max_abs,
        "max_rel_error": max_rel,
        "passed": finite and max_rel <= TOLERANCE[dtype],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        return np.asarray(value).tolist()
    return list(value) if isinstance(value, tuple) else value


def _option_text(options: dict[str, Any]) -> str:
    """``k=v`` pairs for the table; an array option (a class mask, per-class weights) by its shape."""

    def short(v: Any) -> str:
        if isinstance(v, list) and (len(v) > 4 or any(isinstance(x, list) for x in v)):
            return f"<{'x'.join(map(str, np.shape(v)))}>"
        return str(v)

    return ",".join(f"{k}={short(v)}" for k, v in options.items())


def _progress(done: int, total: int, label: str, start: float) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(f"\r[{bar}] {done}/{total} {time.perf_counter() - start:5.1f}s {label[:40]:<40}")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxloss verify", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--platform", choices=["cpu", "gpu", "tpu"], default=None, help="default: every local device")
    parser.add_argument(
        "--dtype", action="append", choices=sorted(TOLERANCE), help="repeatable; default float32 and bfloat16"
    )
    parser.add_argument("--losses", default=None, help="comma-separated loss names (default: all)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the rows as JSON to this path")
    args = parser.parse_args(argv)

    devices = jax.devices(args.platform) if args.platform else jax.local_devices()
    dtypes = args.dtype or ["float32", "bfloat16"]
    selected = rows()
    if args.losses:
        wanted = {resolve(name).name for name in args.losses.split(",")}
        selected = [(spec, example) for spec, example in selected if spec.name in wanted]
    total = len(selected) * len(devices) * len(dtypes)
    results, start = [], time.perf_counter()
    for device in devices:
        for dtype in dtypes:
            for spec, example in selected:
                _progress(len(results), total, f"{spec.name} {dtype}", start)
                results.append(verify_row(spec, example, device, dtype))
    _progress(total, total, "done", start)
    sys.stderr.write("\n")

    header = f"{'loss':<40} {'options':<38} {'device':<8} {'dtype':<9} {'max abs err':>11} {'max rel err':>11}  result"
    print(header)
    print("-" * len(header))
    for r in results:
        opts = _option_text(r["options"])
        print(
            f"{r['loss']:<40} {opts[:38]:<38} {r['device']:<8} {r['dtype']:<9} "
            f"{r['max_abs_error']:>11.2e} {r['max_rel_error']:>11.2e}  {'pass' if r['passed'] else 'FAIL'}"
        )
    failed = sum(not r["passed"] for r in results)
    print(
        f"\n{len(results) - failed} passed, {failed} failed ({time.perf_counter() - start:.1f}s, jax {jax.__version__})"
    )
    if args.json_path:
        meta = {"jax": jax.__version__, "jaxlib": importlib.metadata.version("jaxlib")}
        with open(args.json_path, "w") as fh:
            json.dump({"meta": meta, "rows": results}, fh, indent=2)
    return 1 if failed else 0
