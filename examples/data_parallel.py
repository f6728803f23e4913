"""The same jitted training step on one device and on a mesh of 8 host devices, with batch-sharded inputs.

XLA can split the host CPU into several devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``), which is enough to
try data parallelism without accelerators. The batch is sharded along a
``"data"`` mesh axis with ``NamedSharding(mesh, PartitionSpec("data"))``, the
parameters and optimizer state are replicated, and ``jax.jit`` inserts the
collectives: jaxloss's reduction over the batch becomes an all-reduce. The
script trains an MLP on ``make_classification`` data twice from the same seed,
once on a single device and once on the mesh, and prints that the losses agree
step for step. The PNG shows both loss curves and their difference. Nothing is
downloaded.

    python examples/data_parallel.py [--steps 300] [--out results/]

The device count is fixed when jax starts its CPU backend, so this module sets
``XLA_FLAGS`` before importing jax; if jax was already started with fewer
devices (say, by a test runner), ``main`` runs the script again in a subprocess.
"""

from __future__ import annotations

import functools
import os
import sys

DEVICES = 8
FLAG = f"--xla_force_host_platform_device_count={DEVICES}"
if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    # Read by XLA once, when jax's CPU backend starts, so it must be set before jax is imported. A process that
    # imported jax already is left alone: main() then runs the script in a subprocess.
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FLAG}".strip()

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from tqdm import tqdm  # noqa: E402

import jaxloss  # noqa: E402

NUM_CLASSES = 4
GLOBAL_BATCH = 256  # 32 examples per device


@functools.partial(jax.jit, static_argnames="sizes")
def init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> list[dict[str, jax.Array]]:
    params = []
    for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), itertools.pairwise(sizes), strict=True):
        params.append({"w": jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(2.0 / n_in), "b": jnp.zeros(n_out)})
    return params


def mlp(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    for layer in params[:-1]:
        x = jax.nn.gelu(x @ layer["w"] + layer["b"][None, :])
    return x @ params[-1]["w"] + params[-1]["b"][None, :]


optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3, weight_decay=1e-4))


def step(params, opt_state, xb, yb):
    """One training step; the same Python function is compiled for one device and for the mesh."""
    loss, grads = jax.value_and_grad(
        lambda p: jaxloss.sparse_categorical_crossentropy(yb, mlp(p, xb), from_logits=True)
    )(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def load_data(seed: int):
    x, y = make_classification(
        n_samples=8192, n_features=20, n_informative=12, n_classes=NUM_CLASSES, class_sep=1.5, random_state=seed
    )
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(x_train)
    return (
        scaler.transform(x_train).astype(np.float32),
        y_train.astype(np.int32),
        scaler.transform(x_test).astype(np.float32),
        y_test.astype(np.int32),
    )


def train(data, steps: int, seed: int, mesh: Mesh | None, desc: str):
    """Train from ``seed``; on ``mesh`` if given (batch sharded, state replicated), else on one CPU device."""
    x_train, y_train, x_test, y_test = data
    if mesh is None:
        device = jax.devices("cpu")[0]
        replicated = batch_sharded = jax.sharding.SingleDeviceSharding(device)
    else:
        replicated = NamedSharding(mesh, P())  # every device holds the whole array
        batch_sharded = NamedSharding(mesh, P("data"))  # rows split over the "data" axis
    params = jax.device_put(init_mlp(jax.random.key(seed), (x_train.shape[1], 128, 128, NUM_CLASSES)), replicated)
    opt_state = jax.device_put(jax.jit(optimizer.init)(params), replicated)
    # A sharding given for a pytree argument (params, opt_state) applies to all of its leaves.
    train_step = jax.jit(
        step,
        in_shardings=(replicated, replicated, batch_sharded, batch_sharded),
        out_shardings=(replicated, replicated, replicated),
    )
    rng = np.random.default_rng(seed)
    losses = []
    for _ in (bar := tqdm(range(steps), desc=desc, leave=False, ncols=88, mininterval=0.5, disable=None)):
        idx = rng.choice(len(x_train), size=GLOBAL_BATCH, replace=False)
        xb = jax.device_put(x_train[idx], batch_sharded)
        yb = jax.device_put(y_train[idx], batch_sharded)
        params, opt_state, loss = train_step(params, opt_state, xb, yb)
        losses.append(float(loss))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    accuracy = float(np.mean(np.asarray(jnp.argmax(mlp(params, x_test), axis=1)) == y_test))
    return np.array(losses), accuracy, (xb, params)


def plot(single: np.ndarray, sharded: np.ndarray, out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_diff) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(single, lw=2.5, label="1 device")
    ax_loss.plot(sharded, lw=1, ls="--", label=f"{DEVICES} devices, batch sharded")
    ax_loss.set(xlabel="step", ylabel="training loss", yscale="log", title="The same run, twice")
    ax_loss.legend(fontsize=8)
    diff = np.abs(single - sharded)
    ax_diff.plot(np.maximum(diff, 1e-10), ".", ms=3)
    ax_diff.axhline(1e-5, color="k", ls="--", lw=1, label="1e-5")
    ax_diff.set(xlabel="step", ylabel="|loss difference| (zeros drawn at 1e-10)", yscale="log", ylim=(5e-11, 1e-3))
    ax_diff.set_title("Single device vs mesh")
    ax_diff.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "data_parallel.png", dpi=80)


def rerun_in_subprocess(argv: list[str]) -> dict[str, float]:
    """jax already started with too few CPU devices in this process: run the script afresh."""
    with tempfile.TemporaryDirectory() as tmp:
        metrics_path = pathlib.Path(tmp) / "metrics.json"
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
        env = {**os.environ, "XLA_FLAGS": " ".join([*flags, FLAG])}
        cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), *argv, "--metrics-json", str(metrics_path)]
        subprocess.run(cmd, env=env, check=True)
        return json.loads(metrics_path.read_text())


def main(argv: list[str] | None = None) -> dict[str, float]:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results"))
    parser.add_argument("--metrics-json", type=pathlib.Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if len(jax.devices("cpu")) < DEVICES:
        print(f"jax started with {len(jax.devices('cpu'))} CPU device(s) here; running again in a subprocess")
        return rerun_in_subprocess(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_data(args.seed)
    mesh = Mesh(np.array(jax.devices("cpu")[:DEVICES]), ("data",))
    print(
        f"make_classification: {len(data[0])} training and {len(data[2])} held-out rows, {NUM_CLASSES} classes; "
        f"jax {jax.__version__}, mesh {dict(mesh.shape)} over {len(mesh.devices.flat)} CPU devices"
    )
    single, single_accuracy, _ = train(data, args.steps, args.seed, None, "1 device")
    sharded, sharded_accuracy, (xb, params) = train(data, args.steps, args.seed, mesh, f"{DEVICES} devices")
    shard_shapes = sorted({tuple(s.data.shape) for s in xb.addressable_shards})
    print(f"batch {xb.shape} laid out as {xb.sharding.spec}: {len(xb.addressable_shards)} shards of {shard_shapes[0]}")
    print(f"parameters: {params[0]['w'].sharding.spec} (replicated: {params[0]['w'].sharding.is_fully_replicated})")

    diff = np.abs(single - sharded)
    metrics = {
        "max_abs_diff": float(diff.max()),
        "final_loss": float(sharded[-20:].mean()),
        "single_device_accuracy": single_accuracy,
        "sharded_accuracy": sharded_accuracy,
    }
    print(f"\n{'run':<28} {'final loss':>10} {'accuracy':>9}")
    print(f"{'1 device':<28} {single[-20:].mean():>10.4f} {single_accuracy:>9.2%}")
    print(f"{f'{DEVICES} devices, batch sharded':<28} {sharded[-20:].mean():>10.4f} {sharded_accuracy:>9.2%}")
    verdict = "match" if metrics["max_abs_diff"] < 1e-5 else "DIFFER"
    print(f"\nlosses {verdict}: max |single - sharded| over {args.steps} steps = {metrics['max_abs_diff']:.2e}")
    plot(single, sharded, args.out)
    print(f"wrote {args.out / 'data_parallel.png'}")
    if args.metrics_json is not None:
        args.metrics_json.write_text(json.dumps(metrics))
    return metrics


if __name__ == "__main__":
    main()
