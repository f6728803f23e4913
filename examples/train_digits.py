"""Train an MLP on scikit-learn's bundled digits with three jaxloss losses.

The main job (``make demo``): a jitted optax training step per loss, progress as it
trains, a final table of held-out accuracy, negative log-likelihood and expected
calibration error, and a PNG with the training curves and reliability diagrams.
Nothing is downloaded.

The three losses are different quantities (focal crossentropy down-weights easy
examples, label smoothing adds a floor), so their own values cannot be compared:
the curves show what every run is judged by, the held-out negative log-likelihood
and accuracy of the softmax, measured every few steps. The reliability diagrams
write each bin's sample count and leave out bins with fewer than ``MIN_BIN``
samples, whose accuracy is noise.

    python examples/train_digits.py [--steps 600] [--seed 0] [--out results/]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import pathlib
import sys

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
CALIBRATION_BINS = 10
MIN_BIN = 5  # reliability bins with fewer held-out samples are not drawn
EVALUATIONS = 60  # held-out points per training curve


@functools.partial(jax.jit, static_argnames="sizes")
def init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> list[dict[str, jax.Array]]:
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


def calibration(probs: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS):
    """Expected calibration error over equal-width confidence bins, and per bin: count, accuracy, confidence."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, accs, confs = np.zeros(bins, int), np.full(bins, np.nan), np.full(bins, np.nan)
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        in_bin = (confidence > lo) & (confidence <= hi)
        counts[i] = in_bin.sum()
        if counts[i]:
            accs[i], confs[i] = correct[in_bin].mean(), confidence[in_bin].mean()
    filled = counts > 0
    ece = float(np.sum(counts[filled] / len(labels) * np.abs(accs[filled] - confs[filled])))
    return ece, counts, accs, confs


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    return calibration(probs, labels, bins)[0]


def _progress(steps: int, desc: str):
    """A tqdm bar on a terminal; otherwise (piped, captured) a plain line at each fifth of the run."""
    if sys.stderr.isatty():
        return tqdm(total=steps, desc=desc, leave=False, ncols=88, mininterval=0.5)
    return None


def train(objective, data, steps: int, seed: int, batch: int = 128, name: str = ""):
    x_train, y_train, x_test, y_test = data
    params = init_mlp(jax.random.key(seed), (x_train.shape[1], 256, 128, NUM_CLASSES))
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3, weight_decay=1e-3))
    opt_state = jax.jit(optimizer.init)(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        loss, grads = jax.value_and_grad(lambda p: objective(yb, mlp(p, xb)))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def held_out(params):
        # The shared yardstick: the softmax's negative log-likelihood and accuracy on held-out digits.
        logits = mlp(params, x_test)
        nll = jaxloss.sparse_categorical_crossentropy(y_test, logits, from_logits=True)
        return nll, jnp.mean(jnp.argmax(logits, axis=-1) == y_test)

    rng = np.random.default_rng(seed)
    every = max(1, steps // EVALUATIONS)
    report_every = max(1, steps // 5)
    curve = {"step": [], "nll": [], "accuracy": []}
    bar = _progress(steps, name)
    loss = float("nan")
    for i in range(1, steps + 1):
        idx = rng.choice(len(x_train), size=batch, replace=False)
        params, opt_state, loss = step(params, opt_state, x_train[idx], y_train[idx])
        if i % every == 0 or i == steps:
            nll, accuracy = held_out(params)
            curve["step"].append(i)
            curve["nll"].append(float(nll))
            curve["accuracy"].append(float(accuracy))
        if bar is not None:
            bar.update(1)
            if i % every == 0:
                bar.set_postfix(loss=f"{float(loss):.4f}", nll=f"{curve['nll'][-1]:.3f}")
        elif i % report_every == 0 or i == steps:
            print(
                f"  step {i:>4}/{steps}  training loss {float(loss):.4f}  held-out nll {curve['nll'][-1]:.4f}"
                f"  accuracy {curve['accuracy'][-1]:.2%}",
                flush=True,
            )
    if bar is not None:
        bar.close()
    probs = np.asarray(jax.nn.softmax(mlp(params, x_test)))
    accuracy = float((probs.argmax(axis=1) == y_test).mean())
    return {"curve": curve, "final_loss": float(loss), "accuracy": accuracy, "probs": probs}


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


def plot(results, y_test, out: pathlib.Path) -> pathlib.Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    colors = dict(zip(names, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    fig = plt.figure(figsize=(12, 7.5))
    grid = fig.add_gridspec(2, len(names), height_ratios=[1, 1.1])
    ax_nll, ax_acc = fig.add_subplot(grid[0, : len(names) // 2 + 1]), fig.add_subplot(grid[0, len(names) // 2 + 1 :])
    for name, result in results.items():
        curve = result["curve"]
        ax_nll.plot(curve["step"], curve["nll"], color=colors[name], label=name)
        ax_acc.plot(curve["step"], curve["accuracy"], color=colors[name], label=name)
    ax_nll.set(
        xlabel="training step",
        ylabel="held-out negative log-likelihood",
        yscale="log",
        title="Held-out NLL of the softmax (same metric for every loss)",
    )
    ax_acc.set(xlabel="training step", ylabel="held-out accuracy", ylim=(0.8, 1.0), title="Held-out accuracy")
    ax_nll.legend(fontsize=8)

    width = 1.0 / CALIBRATION_BINS
    centres = (np.arange(CALIBRATION_BINS) + 0.5) * width
    for j, (name, result) in enumerate(results.items()):
        ax = fig.add_subplot(grid[1, j])
        ece, counts, accs, confs = calibration(result["probs"], y_test)
        shown = counts >= MIN_BIN
        ax.bar(centres[shown], accs[shown], width=width * 0.9, color=colors[name], alpha=0.8, label="accuracy")
        ax.plot(confs[shown], confs[shown], "k_", markersize=12, mew=2, label="mean confidence")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        for c, n in zip(centres[shown], counts[shown], strict=True):
            ax.text(c, 0.02, str(n), ha="center", va="bottom", fontsize=8)
        hidden = int(counts[(counts > 0) & ~shown].sum())
        note = f"\n({hidden} samples in bins of < {MIN_BIN} not drawn)" if hidden else ""
        ax.set(
            xlabel="confidence (sample count in each bar)",
            ylabel="held-out accuracy" if j == 0 else None,
            xlim=(0, 1),
            ylim=(0, 1.05),
            title=f"{name}\nECE {ece:.3f}{note}",
        )
        ax.title.set_fontsize(9)
        if j == 0:
            ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path = out / "train_digits.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


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
        print(f"training with {name} ...", flush=True)
        results[name] = train(objective, data, args.steps, args.seed, name=name)

    print(f"\n{'loss':<46} {'final loss':>10} {'held-out NLL':>12} {'accuracy':>9} {'ECE':>7}")
    accuracies = {}
    for name, result in results.items():
        ece = expected_calibration_error(result["probs"], data[3])
        accuracies[name] = result["accuracy"]
        print(
            f"{name:<46} {result['final_loss']:>10.4f} {result['curve']['nll'][-1]:>12.4f} "
            f"{result['accuracy']:>9.2%} {ece:>7.4f}"
        )
    print("(final loss: each objective's own value, not comparable across rows; held-out NLL: the same metric for all)")
    path = plot(results, data[3], args.out)
    print(f"\nwrote {path}")
    return accuracies


if __name__ == "__main__":
    main()
