"""Train an MLP on scikit-learn's bundled digits with three jaxloss losses.

The main job (``make demo``): a jitted optax training step per loss, a progress
bar, a final table of held-out accuracy and expected calibration error, and a
PNG of the training curves and reliability diagrams. Nothing is downloaded.

    python examples/train_digits.py [--steps 600] [--out results/]
"""

from __future__ import annotations

import argparse
import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

import jaxloss

NUM_CLASSES = 10


def init_mlp(key: jax.Array, sizes: list[int]) -> list[dict[str, jax.Array]]:
    params = []
    for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), itertools.pairwise(sizes), strict=True):
        params.append({"w": jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(2.0 / n_in), "b": jnp.zeros(n_out)})
    return params


def mlp(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    # Biases are broadcast explicitly, so the model also runs under jax_numpy_rank_promotion="raise".
    for layer in params[:-1]:
        x = jax.nn.gelu(x @ layer["w"] + layer["b"][None, :])
    return x @ params[-1]["w"] + params[-1]["b"][None, :]


# Each objective maps (integer labels, logits) to a scalar; the one-hot losses get one-hot targets.
OBJECTIVES = {
    "sparse_categorical_crossentropy": lambda y, z: jaxloss.sparse_categorical_crossentropy(y, z, from_logits=True),
    "categorical_crossentropy(label_smoothing=0.1)": lambda y, z: jaxloss.categorical_crossentropy(
        jax.nn.one_hot(y, NUM_CLASSES), z, from_logits=True, label_smoothing=0.1
    ),
    "categorical_focal_crossentropy": lambda y, z: jaxloss.categorical_focal_crossentropy(
        jax.nn.one_hot(y, NUM_CLASSES), z, from_logits=True
    ),
}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10):
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece, accs, confs = 0.0, [], []
    for lo, hi in itertools.pairwise(edges):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
            accs.append(correct[in_bin].mean())
            confs.append(confidence[in_bin].mean())
        else:
            accs.append(np.nan)
            confs.append(np.nan)
    return float(ece), np.array(accs), np.array(confs)


def train(objective, data, steps: int, seed: int, batch: int = 128):
    x_train, y_train, x_test, y_test = data
    params = init_mlp(jax.random.key(seed), [x_train.shape[1], 256, 128, NUM_CLASSES])
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3, weight_decay=1e-3))
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        loss, grads = jax.value_and_grad(lambda p: objective(yb, mlp(p, xb)))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    curve = []
    for _ in (bar := tqdm(range(steps), leave=False, ncols=88)):
        idx = rng.choice(len(x_train), size=batch, replace=False)
        params, opt_state, loss = step(params, opt_state, x_train[idx], y_train[idx])
        curve.append(float(loss))
        bar.set_postfix(loss=f"{curve[-1]:.4f}")
    probs = np.asarray(jax.nn.softmax(mlp(params, x_test)))
    accuracy = float((probs.argmax(axis=1) == y_test).mean())
    return curve, accuracy, probs


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


def plot(results, y_test, out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_curve, ax_rel) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (curve, _, probs) in results.items():
        smooth = np.convolve(curve, np.ones(20) / 20, mode="valid")
        ax_curve.plot(smooth, label=name)
        _, accs, confs = expected_calibration_error(probs, y_test)
        ax_rel.plot(confs, accs, marker="o", label=name)
    ax_curve.set(xlabel="step", ylabel="training loss (moving average)", yscale="log", title="Training curves")
    ax_rel.plot([0, 1], [0, 1], "k--", lw=1)
    ax_rel.set(xlabel="confidence", ylabel="accuracy", title="Reliability diagram (held out)", xlim=(0, 1), ylim=(0, 1))
    for ax in (ax_curve, ax_rel):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "train_digits.png", dpi=80)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_data(args.seed)
    print(
        f"digits: {len(data[0])} training and {len(data[2])} held-out images, jax {jax.__version__} on {jax.devices()[0]}"
    )
    results = {}
    for name, objective in OBJECTIVES.items():
        print(f"training with {name} ...")
        results[name] = train(objective, data, args.steps, args.seed)

    print(f"\n{'loss':<46} {'final loss':>10} {'accuracy':>9} {'ECE':>7}")
    accuracies = {}
    for name, (curve, accuracy, probs) in results.items():
        ece, _, _ = expected_calibration_error(probs, data[3])
        accuracies[name] = accuracy
        print(f"{name:<46} {np.mean(curve[-20:]):>10.4f} {accuracy:>9.2%} {ece:>7.4f}")
    plot(results, data[3], args.out)
    print(f"\nwrote {args.out / 'train_digits.png'}")
    return accuracies


if __name__ == "__main__":
    main()
