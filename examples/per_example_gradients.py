"""Per-example gradients with ``jax.vmap(jaxloss.grad(...))``, clipped and noised as in DP-SGD.

An MLP on scikit-learn's bundled digits. ``jaxloss.grad`` gives each example's
gradient with respect to its own logits; ``jax.vmap`` of a vector-Jacobian
product carries it back to a per-example gradient of every parameter. Those are
clipped to norm ``C`` one example at a time, summed, noised with Gaussian noise
of standard deviation ``sigma * C`` and averaged (Abadi et al. 2016), in an
optax ``GradientTransformation`` chained with adam. The table compares the
ordinary mean gradient, per-example clipping alone and full DP-SGD; the PNG
shows the per-example gradient norms against the clipping norm and the held-out
accuracy during training. No privacy accounting is done here (dp_accounting
does that). Nothing is downloaded.

    python examples/per_example_gradients.py [--steps 500] [--out results/]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import pathlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

import jaxloss

BATCH = 128
CLIP_NORM = 1.0
NOISE_MULTIPLIER = 1.0
LEARNING_RATE = 2e-3

# d loss / d logits for one example: integer label (), logits (10,). Under jax.vmap, one row per example.
logit_grad = jaxloss.grad(jaxloss.sparse_categorical_crossentropy, from_logits=True)


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


def per_example_grads(params, x: jax.Array, y: jax.Array):
    """Per-example parameter gradients (every leaf gets a leading batch axis) and the batch's logits."""
    logits = mlp(params, x)
    dlogits = jax.vmap(logit_grad)(y, logits)  # (batch, classes): row i is d loss_i / d logits_i

    def backprop(x_i, dlogits_i):
        _, vjp = jax.vjp(lambda p: mlp(p, x_i[None, :])[0], params)
        return vjp(dlogits_i)[0]

    return jax.vmap(backprop)(x, dlogits), logits


class DPState(NamedTuple):
    key: jax.Array


def dp_aggregate(clip_norm: float, noise_multiplier: float, key: jax.Array) -> optax.GradientTransformation:
    """Per-example clipping, sum, Gaussian noise, mean: the DP-SGD aggregation as an optax transformation.

    Takes per-example gradients (leading batch axis) and returns one update, so
    it must come first in an ``optax.chain``. Equivalent to
    ``optax.contrib.differentially_private_aggregate``, written out here.
    """

    def init(params):
        del params
        return DPState(key)

    def update(updates, state, params=None):
        del params
        leaves, treedef = jax.tree.flatten(updates)
        batch = leaves[0].shape[0]
        norms = jnp.sqrt(sum(jnp.sum(jnp.square(g.reshape(batch, -1)), axis=1) for g in leaves))
        factor = jnp.minimum(1.0, clip_norm / jnp.maximum(norms, 1e-12))
        key, *keys = jax.random.split(state.key, len(leaves) + 1)
        noised = [
            (jnp.tensordot(factor, g, axes=1) + noise_multiplier * clip_norm * jax.random.normal(k, g.shape[1:]))
            / batch
            for g, k in zip(leaves, keys, strict=True)
        ]
        return jax.tree.unflatten(treedef, noised), DPState(key)

    return optax.GradientTransformation(init, update)


def global_norms(grads) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=1) for g in jax.tree.leaves(grads)))


def train(mode: str, data, steps: int, seed: int):
    x_train, y_train, x_test, y_test = data
    key_init, key_noise = jax.random.split(jax.random.key(seed))
    params = init_mlp(key_init, (x_train.shape[1], 64, 10))
    if mode == "non-private":
        optimizer = optax.chain(optax.clip_by_global_norm(CLIP_NORM), optax.adam(LEARNING_RATE))
    else:
        sigma = NOISE_MULTIPLIER if mode == "DP-SGD" else 0.0
        optimizer = optax.chain(dp_aggregate(CLIP_NORM, sigma, key_noise), optax.adam(LEARNING_RATE))
    opt_state = jax.jit(optimizer.init)(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        grads, logits = per_example_grads(params, xb, yb)
        if mode == "non-private":
            grads = jax.tree.map(lambda g: g.mean(axis=0), grads)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        loss = jaxloss.sparse_categorical_crossentropy(yb, logits, from_logits=True)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def evaluate(params):
        return jnp.mean(jnp.argmax(mlp(params, x_test), axis=1) == y_test)

    norms_at = jax.jit(lambda p, xb, yb: global_norms(per_example_grads(p, xb, yb)[0]))
    rng = np.random.default_rng(seed)
    curve, accuracy, norms = [], [], {"first step": np.asarray(norms_at(params, x_train, y_train))}
    for i in (bar := tqdm(range(steps), leave=False, ncols=88, mininterval=0.5, disable=None)):
        idx = rng.choice(len(x_train), size=BATCH, replace=False)
        params, opt_state, loss = step(params, opt_state, x_train[idx], y_train[idx])
        curve.append(float(loss))
        if i % 25 == 24 or i == steps - 1:
            accuracy.append((i + 1, float(evaluate(params))))
        bar.set_postfix(loss=f"{curve[-1]:.4f}")
    norms["last step"] = np.asarray(norms_at(params, x_train, y_train))
    return {"curve": curve, "accuracy": accuracy, "norms": norms}


def max_leaf_diff(a, b) -> jax.Array:
    return jnp.max(
        jnp.stack([jnp.max(jnp.abs(u - v)) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)])
    )


def check_against_autodiff(data, seed: int) -> float:
    """Max |difference| between the per-example gradients above and jax.vmap(jax.grad) of the whole loss."""
    x, y = data[0][:BATCH], data[1][:BATCH]

    def loss_one(p, x_i, y_i):
        return jaxloss.sparse_categorical_crossentropy(y_i[None], mlp(p, x_i[None, :]), from_logits=True)

    @jax.jit
    def max_abs_diff(x, y):
        params = init_mlp(jax.random.key(seed), (x.shape[1], 64, 10))
        ours, _ = per_example_grads(params, x, y)
        reference = jax.vmap(jax.grad(loss_one), in_axes=(None, 0, 0))(params, x, y)
        return max_leaf_diff(ours, reference)

    return float(max_abs_diff(x, y))


def check_against_optax(data, seed: int) -> float:
    """Max |difference| between dp_aggregate and optax.contrib.differentially_private_aggregate without noise."""

    @jax.jit
    def max_abs_diff(x, y):
        params = init_mlp(jax.random.key(seed), (x.shape[1], 64, 10))
        grads, _ = per_example_grads(params, x, y)
        key = jax.random.key(seed)
        ours, _ = dp_aggregate(CLIP_NORM, 0.0, key).update(grads, DPState(key))
        theirs_transform = optax.contrib.differentially_private_aggregate(CLIP_NORM, 0.0, key)
        theirs, _ = theirs_transform.update(grads, theirs_transform.init(params))
        return max_leaf_diff(ours, theirs)

    return float(max_abs_diff(data[0][:BATCH], data[1][:BATCH]))


def load_data(seed: int):
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    scaler = StandardScaler().fit(x_train)
    return (
        scaler.transform(x_train).astype(np.float32),
        y_train.astype(np.int32),
        scaler.transform(x_test).astype(np.float32),
        y_test.astype(np.int32),
    )


def plot(results: dict[str, dict[str, Any]], out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_norms, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    dp = results["DP-SGD"]["norms"]
    top = max(v.max() for v in dp.values())
    bins = np.geomspace(1e-3, top * 1.1, 40)
    for when, norms in dp.items():
        ax_norms.hist(np.maximum(norms, bins[0]), bins=bins, histtype="step", lw=1.5, label=f"DP-SGD model, {when}")
    ax_norms.axvline(CLIP_NORM, color="k", ls="--", lw=1, label=f"clipping norm C = {CLIP_NORM}")
    ax_norms.set(xscale="log", xlabel="per-example gradient norm (training set)", ylabel="examples")
    ax_norms.set_title("Per-example gradient norms")
    for name, result in results.items():
        steps, accuracy = zip(*result["accuracy"], strict=True)
        ax_acc.plot(steps, accuracy, label=name)
    ax_acc.set(xlabel="step", ylabel="held-out accuracy", title="Accuracy during training", ylim=(0.5, 1.0))
    for ax in (ax_norms, ax_acc):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "per_example_gradients.png", dpi=80)


RUNS = {
    "non-private": "mean gradient, clip_by_global_norm",
    "per-example clipping": f"C={CLIP_NORM}, no noise",
    "DP-SGD": f"C={CLIP_NORM}, sigma={NOISE_MULTIPLIER}",
}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_data(args.seed)
    print(
        f"digits: {len(data[0])} training and {len(data[2])} held-out images, batch {BATCH}, "
        f"jax {jax.__version__} on {jax.devices()[0]}"
    )
    metrics = {
        "autodiff_max_abs_diff": check_against_autodiff(data, args.seed),
        "optax_max_abs_diff": check_against_optax(data, args.seed),
    }
    print(f"per-example gradients vs jax.vmap(jax.grad(...)): max |diff| = {metrics['autodiff_max_abs_diff']:.1e}")
    print(
        f"dp_aggregate vs optax.contrib.differentially_private_aggregate: max |diff| = {metrics['optax_max_abs_diff']:.1e}"
    )
    results = {}
    for name, detail in RUNS.items():
        print(f"training {name} ({detail}) ...")
        results[name] = train(name, data, args.steps, args.seed)

    print(f"\n{'run':<22} {'setting':<34} {'final loss':>10} {'accuracy':>9} {'clipped':>8}")
    for name, result in results.items():
        clipped = float(np.mean(result["norms"]["last step"] > CLIP_NORM))
        metrics[name] = result["accuracy"][-1][1]
        print(
            f"{name:<22} {RUNS[name]:<34} {np.mean(result['curve'][-20:]):>10.4f} {metrics[name]:>9.2%} {clipped:>8.0%}"
        )
    plot(results, args.out)
    print("\n'clipped': share of training examples whose gradient norm exceeds C at the end.")
    print(f"wrote {args.out / 'per_example_gradients.png'}")
    return metrics


if __name__ == "__main__":
    main()
