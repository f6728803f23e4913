"""One of the two JAX processes of tests/test_multiprocess.py, on a global 2 x 4 mesh of host CPU devices.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 \
      python tests/multiprocess_worker.py PROCESS_ID PORT OUT_DIR {short,full}

Each process starts JAX's multi-controller runtime (``jax.distributed.initialize``, the
coordinator on ``127.0.0.1:PORT``, CPU collectives over gloo), builds the same global
arrays, runs the jitted value-and-gradient programs below on the global mesh, gathers
the results and writes ``OUT_DIR/results_<PROCESS_ID>.npz``. The inputs and the loss
calls are defined here once, so the test evaluates exactly the same calls in one
process (:func:`single_process`) and compares.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxloss

NUM_PROCESSES = 2
LOCAL_DEVICES = 4
IGNORE = -100
# 26 tokens: 13 per data shard; 44 classes: 11 per model shard; chunks of 5 tokens.
LCE_OPTIONS = {"ignore_class": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-3, "logit_soft_cap": 3.0, "chunk_size": 5}
# The vocab-parallel cases: (weight layout, reduction, mesh). "short" runs in the normal suite.
MESH_KINDS = ("model_within", "model_across")
LCE_CASES = {
    "full": tuple((lay, red, mesh) for lay in ("dv", "vd") for red in ("sum", "none") for mesh in MESH_KINDS),
    "short": (("dv", "sum", "model_within"), ("vd", "none", "model_across")),
}


def make_data() -> dict[str, np.ndarray]:
    """The inputs, from a fixed seed: every process builds the same global arrays from them."""
    rng = np.random.default_rng(0)
    n, c = 64, 12  # the batch-sharded losses: 8 rows per device
    labels = rng.integers(0, c, n)
    labels[[3, 40]] = IGNORE
    tokens, d, v = 26, 8, 44
    y = rng.integers(0, v, tokens)
    y[[2, 15]] = IGNORE
    y[[0, 1, 13, 14]] = [0, v - 1, 10, 11]  # the first and last class, and a model shard's edges
    w = rng.standard_normal((d, v)) * 0.5
    return {
        "labels": labels.astype(np.int32),
        "logits": (rng.standard_normal((n, c)) * 2.0).astype(np.float32),
        "sample_weight": rng.uniform(0.5, 2.0, n).astype(np.float32),
        "y_true": rng.standard_normal((n, 5)).astype(np.float32),
        "y_pred": rng.standard_normal((n, 5)).astype(np.float32),
        "tokens": y.astype(np.int32),
        "hidden": rng.standard_normal((tokens, d)).astype(np.float32),
        "weight_dv": w.astype(np.float32),
        "weight_vd": np.ascontiguousarray(w.T).astype(np.float32),
        "bias": (rng.standard_normal(v) * 0.5).astype(np.float32),
        "class_weight": rng.uniform(0.2, 2.0, v).astype(np.float32),
        "token_weight": rng.uniform(0.5, 2.0, tokens).astype(np.float32),
        "cotangent": rng.standard_normal(tokens).astype(np.float32),
    }


# --------------------------------------------------------------------------
# The programs: value and gradient of each loss
# --------------------------------------------------------------------------


def crossentropy(logits, labels, sample_weight):
    return jaxloss.sparse_categorical_crossentropy(
        labels, logits, from_logits=True, ignore_class=IGNORE, sample_weight=sample_weight
    )


def regression(y_pred, y_true, sample_weight):
    return jaxloss.huber(y_true, y_pred, delta=0.7, sample_weight=sample_weight)


def lm_head(layout: str, reduction: str, mesh: Mesh | None = None):
    """``(hidden, weight, bias, tokens, token_weight, class_weight, cotangent) -> scalar``; vocab-parallel
    over the mesh's ``"model"`` axis (tokens over ``"data"``) when a mesh is given."""
    axis_name = None if mesh is None else "model"

    def loss(h, w, b, y, sw, cw, ct):
        out = jaxloss.linear_cross_entropy(
            y,
            h,
            w,
            bias=b,
            weight_layout=layout,
            class_weight=cw,
            sample_weight=sw,
            reduction=reduction,
            axis_name=axis_name,
            **LCE_OPTIONS,
        )
        if axis_name is not None and reduction != "none":
            out = jax.lax.psum(out, "data")  # each data shard's sum of its own tokens
        return out

    def scalar(per_call):
        def f(h, w, b, y, sw, cw, ct):
            out = per_call(h, w, b, y, sw, cw, ct)
            return jnp.sum(ct * out) if reduction == "none" else out

        return f

    if mesh is None:
        return scalar(loss)
    weight_spec = P(None, "model") if layout == "dv" else P("model", None)
    specs = (P("data", None), weight_spec, P("model"), P("data"), P("data"), P(), P("data"))
    out_specs = P("data") if reduction == "none" else P()
    return scalar(jax.shard_map(loss, mesh=mesh, in_specs=specs, out_specs=out_specs))


LCE_SPECS = {
    "hidden": P("data", None),
    "weight_dv": P(None, "model"),
    "weight_vd": P("model", None),
    "bias": P("model"),
    "tokens": P("data"),
    "token_weight": P("data"),
    "class_weight": P(),
    "cotangent": P("data"),
}


def _results(run, cases: str, meshes: dict[str, Mesh] | None) -> dict[str, np.ndarray]:
    """Value and gradients of every program; ``run(fn, names, argnums, mesh)`` evaluates one.

    ``meshes=None``: in one process, and the linear_cross_entropy cases without a mesh (``.../single/``).
    """
    out: dict[str, np.ndarray] = {}
    value, grad = run(crossentropy, ("logits", "labels", "sample_weight"))
    out["crossentropy/value"], out["crossentropy/grad"] = value, grad[0]
    value, grad = run(regression, ("y_pred", "y_true", "sample_weight"))
    out["huber/value"], out["huber/grad"] = value, grad[0]
    for layout, reduction, kind in LCE_CASES[cases]:
        mesh = None if meshes is None else meshes[kind]
        key = f"lm_head/{layout}/{reduction}/{'single' if mesh is None else kind}"
        if f"{key}/value" in out:
            continue
        names = ("hidden", f"weight_{layout}", "bias", "tokens", "token_weight", "class_weight", "cotangent")
        value, grads = run(lm_head(layout, reduction, mesh), names, (0, 1, 2), mesh)
        out[f"{key}/value"] = value
        for name, g in zip(("hidden", "weight", "bias"), grads, strict=True):
            out[f"{key}/{name}"] = g
    return out


def single_process(data: dict[str, np.ndarray], cases: str) -> dict[str, np.ndarray]:
    """Every program in this process, on one device, without a mesh."""

    def run(fn, names, argnums=(0,), mesh=None):
        value, grads = jax.jit(jax.value_and_grad(fn, argnums))(*(jnp.asarray(data[n]) for n in names))
        return np.asarray(value), [np.asarray(g) for g in grads]

    return _results(run, cases, None)


# --------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------


def global_meshes() -> dict[str, Mesh]:
    """The 2 x 4 mesh two ways: the model axis within each process (jax.make_mesh), and across the two."""
    auto = (jax.sharding.AxisType.Auto,) * 2
    within = jax.make_mesh((2, 4), ("data", "model"), axis_types=auto)
    devices = np.array(jax.devices()).reshape(4, 2).T  # row k: two devices of each process
    across = Mesh(devices, ("data", "model"), axis_types=auto)
    return {"model_within": within, "model_across": across}


def multi_process(data: dict[str, np.ndarray], cases: str) -> dict[str, np.ndarray]:
    from jax.experimental import multihost_utils

    meshes = global_meshes()
    batch = meshes["model_within"]

    def place(name, mesh, spec):
        array = data[name]
        return jax.make_array_from_callback(array.shape, NamedSharding(mesh, spec), lambda index: array[index])

    def gathered(x):
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    def run(fn, names, argnums=(0,), mesh=None):
        if mesh is None:  # batch-sharded: rows over all 8 devices, under plain jit
            args = [place(n, batch, P(("data", "model"), *([None] * (data[n].ndim - 1)))) for n in names]
        else:
            args = [place(n, mesh, LCE_SPECS[n]) for n in names]
        value, grads = jax.jit(jax.value_and_grad(fn, argnums))(*args)
        return np.asarray(value.addressable_data(0)), [gathered(g) for g in grads]

    return _results(run, cases, meshes)


def main(argv: list[str]) -> int:
    process_id, port, out_dir, cases = int(argv[0]), int(argv[1]), argv[2], argv[3]
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=NUM_PROCESSES,
        process_id=process_id,
        initialization_timeout=60,
    )
    try:
        assert jax.process_count() == NUM_PROCESSES, jax.process_count()
        assert len(jax.local_devices()) == LOCAL_DEVICES, jax.local_devices()
        assert len(jax.devices()) == NUM_PROCESSES * LOCAL_DEVICES, jax.devices()
        results = multi_process(make_data(), cases)
        meshes = global_meshes()
        for kind, mesh in meshes.items():  # which process holds each device of the mesh
            results[f"mesh/{kind}"] = np.vectorize(lambda d: d.process_index)(mesh.devices)
        path = os.path.join(out_dir, f"results_{process_id}.npz")
        np.savez(path + ".tmp.npz", **results)
        os.replace(path + ".tmp.npz", path)
    finally:
        jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
