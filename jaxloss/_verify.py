"""``python -m jaxloss verify``: closed-form against autodiff gradients on local devices.

For every registered loss and a representative option set, on every local
device (or one ``--platform``), in each ``--dtype``, compare
``analytic_grad`` with autodiff (``jax.grad``; of the plain per-sample formula
for the losses that carry the closed form as their ``custom_jvp`` rule) and
report the max absolute and max relative error. Exit status 1 when any row fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._gradients import analytic_grad, grad
from ._registry import resolve

Maker = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _real(shape):
    return lambda r: (r.uniform(-2, 2, shape), r.uniform(-2, 2, shape))


def _positive(shape):
    return lambda r: (r.uniform(0.1, 3, shape), r.uniform(0.1, 3, shape))


def _binary(shape, logits):
    def make(r):
        p = r.normal(0, 3, shape) if logits else r.uniform(0.02, 0.98, shape)
        return r.integers(0, 2, shape).astype(np.float64), p

    return make


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _onehot(n, c, logits):
    def make(r):
        z = r.normal(0, 2, (n, c))
        return np.eye(c)[r.integers(0, c, n)], z if logits else _softmax(z)

    return make


def _sparse(n, c, logits):
    def make(r):
        z = r.normal(0, 2, (n, c))
        return r.integers(0, c, n), z if logits else _softmax(z)

    return make


def _distributions(n, c):
    return lambda r: (_softmax(r.normal(0, 1, (n, c))), _softmax(r.normal(0, 1, (n, c))))


def _log_softmax(x):
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _log_distributions(n, c, log_target, log_input):
    """KL inputs given as log-probabilities (log-softmax of normals) where the flags say so."""

    def make(r):
        t, p = r.normal(0, 1, (n, c)), r.normal(0, 1, (n, c))
        return (_log_softmax(t) if log_target else _softmax(t)), (_log_softmax(p) if log_input else _softmax(p))

    return make


def _class_mask(n, c, seed=1):
    """A boolean class mask per row, at least one class kept in each (row 0 keeps exactly one)."""
    mask = np.random.default_rng(seed).random((n, c)) < 0.6
    mask[0] = False
    mask[np.arange(n), np.random.default_rng(seed + 1).integers(0, c, n)] = True
    return mask


def _masked(where, n, sparse, masked_logit=None):
    """Labels drawn among each row's unmasked classes; logits finite, or ``masked_logit`` under the mask."""
    rows = np.broadcast_to(where, (n, where.shape[-1]))

    def make(r):
        labels = np.array([r.choice(np.flatnonzero(row)) for row in rows])
        z = r.normal(0, 2, rows.shape)
        if masked_logit is not None:
            z = np.where(rows, z, masked_logit)
        return (labels if sparse else np.eye(rows.shape[-1])[labels]), z

    return make


def _signs(shape):
    return lambda r: (r.choice([-1.0, 1.0], shape), r.normal(0, 1, shape))


def _masks(shape):
    return lambda r: (r.integers(0, 2, shape).astype(np.float64), r.uniform(0.05, 0.95, shape))


def _ctc(b, t, c, length):
    def make(r):
        labels = r.integers(1, c, (b, length))
        labels[0, length // 2 :] = 0
        return labels, r.normal(0, 1, (b, t, c))

    return make


def _ctc_lengths(lengths, t, c, blank):
    """Labels that avoid ``blank`` within each row's length, arbitrary classes past it."""

    def make(r):
        labels = r.integers(0, c - 1, (len(lengths), max(lengths)))
        labels[labels >= blank] += 1  # skip the blank
        past = np.arange(labels.shape[1])[None, :] >= np.asarray(lengths)[:, None]
        labels[past] = r.integers(0, c, int(past.sum()))
        return labels, r.normal(0, 1, (len(lengths), t, c))

    return make


def _embeddings(n, d, classes):
    def make(r):
        x = r.normal(0, 1, (n, d))
        return r.integers(0, classes, n), x / np.linalg.norm(x, axis=1, keepdims=True)

    return make


def _ranking(shape):
    return lambda r: (r.choice([-1.0, 1.0], shape), r.normal(0, 1, shape + (2,)))


def _pairs(n, d):
    return lambda r: (r.choice([-1.0, 1.0], n), r.normal(0, 1, (n, 2, d)))


def _triplets(n, d):
    return lambda r: (r.normal(0, 1, (n, d)), r.normal(0, 1, (n, 2, d)))


def _relevance(n, c):
    return lambda r: (r.integers(0, 3, (n, c)).astype(np.float64), r.normal(0, 1, (n, c)))


# The options beyond Keras on the Keras losses.
CLASS_WEIGHT = [0.5, 1.0, 2.0, 0.0, 1.5, 1.0, 3.0, 0.25, 1.0, 0.75]
POS_WEIGHT = np.linspace(0.5, 4.0, 16)
WHERE = _class_mask(64, 10)
WHERE_CLASSES = np.array([True, True, False, True, True, True, False, True, True, False])  # broadcast over rows
CTC_LABEL_LENGTHS = np.array([6, 3, 0, 5])
CTC_LOGIT_LENGTHS = np.array([20, 9, 14, 16])

# (loss, options, inputs): one representative row per loss and main option.
ROWS: list[tuple[str, dict[str, Any], Maker]] = [
    ("mean_squared_error", {}, _real((64, 16))),
    ("mean_absolute_error", {}, _real((64, 16))),
    ("mean_absolute_percentage_error", {}, _positive((64, 16))),
    ("mean_squared_logarithmic_error", {}, _positive((64, 16))),
    ("huber", {"delta": 0.5}, _real((64, 16))),
    ("log_cosh", {}, _real((64, 16))),
    ("cosine_similarity", {}, _real((64, 16))),
    ("poisson", {}, _positive((64, 16))),
    ("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.1}, _binary((64, 16), True)),
    ("binary_crossentropy", {}, _binary((64, 16), False)),
    ("binary_crossentropy", {"from_logits": True, "pos_weight": POS_WEIGHT}, _binary((64, 16), True)),
    ("binary_crossentropy", {"pos_weight": 3.0}, _binary((64, 16), False)),
    ("binary_focal_crossentropy", {"from_logits": True, "apply_class_balancing": True}, _binary((64, 16), True)),
    ("binary_focal_crossentropy", {}, _binary((64, 16), False)),
    ("categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.1}, _onehot(64, 10, True)),
    ("categorical_crossentropy", {}, _onehot(64, 10, False)),
    ("categorical_focal_crossentropy", {"from_logits": True}, _onehot(64, 10, True)),
    ("categorical_focal_crossentropy", {}, _onehot(64, 10, False)),
    ("sparse_categorical_crossentropy", {"from_logits": True, "ignore_class": 3}, _sparse(64, 10, True)),
    ("sparse_categorical_crossentropy", {}, _sparse(64, 10, False)),
    ("categorical_crossentropy", {"from_logits": True, "class_weight": CLASS_WEIGHT}, _onehot(64, 10, True)),
    ("categorical_crossentropy", {"class_weight": CLASS_WEIGHT}, _onehot(64, 10, False)),
    ("categorical_crossentropy", {"from_logits": True, "where": WHERE}, _masked(WHERE, 64, sparse=False)),
    (
        "categorical_crossentropy",
        {"from_logits": True, "where": WHERE_CLASSES},
        _masked(WHERE_CLASSES, 64, sparse=False, masked_logit=-np.inf),
    ),
    ("categorical_crossentropy", {"from_logits": True, "z_loss": 0.1}, _onehot(64, 10, True)),
    ("categorical_crossentropy", {"from_logits": True, "logit_soft_cap": 5.0}, _onehot(64, 10, True)),
    (
        "sparse_categorical_crossentropy",
        {"from_logits": True, "class_weight": CLASS_WEIGHT, "reduction": "mean_with_sample_weight"},
        _sparse(64, 10, True),
    ),
    ("sparse_categorical_crossentropy", {"from_logits": True, "where": WHERE}, _masked(WHERE, 64, sparse=True)),
    (
        "sparse_categorical_crossentropy",
        {"from_logits": True, "where": WHERE_CLASSES},
        _masked(WHERE_CLASSES, 64, sparse=True, masked_logit=-np.inf),
    ),
    ("sparse_categorical_crossentropy", {"from_logits": True, "z_loss": 0.1}, _sparse(64, 10, True)),
    ("sparse_categorical_crossentropy", {"from_logits": True, "logit_soft_cap": 5.0}, _sparse(64, 10, True)),
    ("sparse_categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.1}, _sparse(64, 10, True)),
    ("sparse_categorical_crossentropy", {"label_smoothing": 0.1}, _sparse(64, 10, False)),
    ("categorical_generalized_cross_entropy", {"q": 0.5}, _sparse(64, 10, False)),
    ("kl_divergence", {}, _distributions(64, 10)),
    ("kl_divergence", {"log_input": True}, _log_distributions(64, 10, log_target=False, log_input=True)),
    ("kl_divergence", {"log_target": True}, _log_distributions(64, 10, log_target=True, log_input=False)),
    (
        "kl_divergence",
        {"log_input": True, "log_target": True},
        _log_distributions(64, 10, log_target=True, log_input=True),
    ),
    ("hinge", {}, _signs((64, 16))),
    ("squared_hinge", {}, _signs((64, 16))),
    ("categorical_hinge", {}, _onehot(64, 10, True)),
    ("dice", {"axis": (1, 2)}, _masks((8, 16, 16))),
    ("tversky", {"alpha": 0.3, "beta": 0.7, "axis": (1, 2)}, _masks((8, 16, 16))),
    ("circle", {}, _embeddings(32, 16, 4)),
    ("ctc", {}, _ctc(4, 20, 8, 6)),
    (
        "ctc",
        {"blank_index": 3, "label_lengths": CTC_LABEL_LENGTHS, "logit_lengths": CTC_LOGIT_LENGTHS},
        _ctc_lengths(CTC_LABEL_LENGTHS, 20, 8, blank=3),
    ),
    # Beyond Keras (optax and PyTorch parity)
    ("multiclass_hinge", {}, _sparse(64, 10, True)),
    ("multi_margin", {"p": 2, "margin": 0.5}, _sparse(64, 10, True)),
    ("perceptron", {}, _signs((64, 16))),
    ("hinge_embedding", {"margin": 1.5}, _signs((64, 16))),
    ("soft_margin", {}, _signs((64, 16))),
    ("multilabel_soft_margin", {}, _binary((64, 10), True)),
    ("margin_ranking", {"margin": 0.2}, _ranking((64,))),
    ("cosine_embedding", {"margin": 0.3}, _pairs(64, 16)),
    ("triplet_margin", {"swap": True}, _triplets(64, 16)),
    ("smooth_l1", {"beta": 0.5}, _real((64, 16))),
    ("gaussian_nll", {"variance": 0.7, "full": True}, _real((64, 16))),
    ("poisson_nll", {"log_input": True, "full": True}, _positive((64, 16))),
    ("generalized_kl_divergence", {}, _positive((64, 16))),
    ("poly_loss", {"epsilon": 2.0}, _onehot(64, 10, True)),
    ("sigmoid_focal", {"alpha": 0.25}, _binary((64, 16), True)),
    ("ntxent", {"temperature": 0.5}, _embeddings(32, 16, 4)),
    ("sparsemax_loss", {}, _sparse(64, 10, True)),
    ("ranking_softmax", {}, _relevance(32, 10)),
]

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
    spec, _ = resolve(loss)
    if not spec.custom_jvp:
        return grad(loss, **options)
    reduction = options.get("reduction", "sum_over_batch_size")
    opts = {k: v for k, v in options.items() if k != "reduction"}
    spec._check_options(opts, reduction)
    static, numeric = spec._split(opts)
    merged = {**dict(static), **numeric}

    def objective(y_pred, y_true):
        # With reduction="none", the gradient of the sum, as jaxloss.grad takes it.
        return jnp.sum(spec.plain_forward(reduction, y_true, y_pred, None, merged))

    g = jax.jit(jax.grad(objective))
    return lambda y_true, y_pred: g(jnp.asarray(y_pred), jnp.asarray(y_true))


def verify_row(loss: str, options: dict[str, Any], make: Maker, device, dtype: str, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    y_true, y_pred = make(rng)
    y_true = np.asarray(y_true)
    if not np.issubdtype(y_true.dtype, np.integer):
        y_true = y_true.astype(np.float32)
    yt, yp = _cast(y_true, dtype, device), _cast(np.asarray(y_pred, np.float32), dtype, device)
    closed = np.asarray(analytic_grad(loss, **options)(yt, yp), np.float64)
    auto = np.asarray(autodiff_grad(loss, **options)(yt, yp), np.float64)
    err = np.abs(closed - auto)
    scale = max(float(np.max(np.abs(auto))), np.finfo(np.float32).tiny)
    max_abs = float(np.max(err)) if err.size else 0.0
    max_rel = max_abs / scale
    finite = bool(np.all(np.isfinite(closed)) and np.all(np.isfinite(auto)))
    return {
        "loss": loss,
        "options": {k: _jsonable(v) for k, v in options.items()},
        "device": f"{device.platform}:{device.id}",
        "device_kind": getattr(device, "device_kind", device.platform),
        "dtype": dtype,
        "max_abs_error": max_abs,
        "max_rel_error": max_rel,
        "passed": finite and max_rel <= TOLERANCE[dtype],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
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
    parser = argparse.ArgumentParser(prog="python -m jaxloss verify", description=__doc__.splitlines()[0])
    parser.add_argument("--platform", choices=["cpu", "gpu", "tpu"], default=None, help="default: every local device")
    parser.add_argument(
        "--dtype", action="append", choices=sorted(TOLERANCE), help="repeatable; default float32 and bfloat16"
    )
    parser.add_argument("--losses", default=None, help="comma-separated loss names (default: all)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the rows as JSON to this path")
    args = parser.parse_args(argv)

    devices = jax.devices(args.platform) if args.platform else jax.local_devices()
    dtypes = args.dtype or ["float32", "bfloat16"]
    rows = ROWS
    if args.losses:
        wanted = {resolve(name)[0].name for name in args.losses.split(",")}
        rows = [r for r in ROWS if r[0] in wanted]
    total = len(rows) * len(devices) * len(dtypes)
    results, start = [], time.perf_counter()
    for device in devices:
        for dtype in dtypes:
            for loss, options, make in rows:
                _progress(len(results), total, f"{loss} {dtype}", start)
                results.append(verify_row(loss, options, make, device, dtype))
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
        meta = {"jax": jax.__version__, "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else None}
        with open(args.json_path, "w") as fh:
            json.dump({"meta": meta, "rows": results}, fh, indent=2)
    return 1 if failed else 0
