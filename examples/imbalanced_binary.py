"""Binary crossentropy against class-balanced binary focal crossentropy on 1:50 imbalanced data.

``make_classification`` draws 20,000 rows with one positive for every fifty
negatives, each class spread over four clusters. The same MLP is trained for
the same number of steps with ``binary_crossentropy`` and with
``binary_focal_crossentropy(apply_class_balancing=True, alpha=0.9, gamma=0.5)``,
which weights the rare positives by ``alpha`` and the negatives by
``1 - alpha``, and scales every example by ``(1 - p_t)**gamma`` so that
confidently right ones count less. The table gives held-out PR-AUC (average
precision) and the recall reached at 50% precision; the PNG shows the
precision-recall curves.

What this shows is speed, not a better optimum. At this budget (300 steps of
256, about five epochs) the focal model ranks the rare class better: a higher
PR-AUC for each of the 12 seeds we tried and a higher (once equal) recall at
50% precision, with the largest gap early in training. Trained five times
longer, binary crossentropy catches up and overtakes it (1500 steps: PR-AUC
0.77 against 0.75, averaged over 4 seeds). Nothing is downloaded.

    python examples/imbalanced_binary.py [--steps 300] [--out results/]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import make_classification
from sklearn.metrics import average_precision_score, precision_recall_curve
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

import jaxloss

PRECISION = 0.5  # recall is reported at this precision
BATCH = 256

# Each objective maps (labels (batch, 1) in {0, 1}, logits (batch, 1)) to a scalar.
OBJECTIVES = {
    "binary_crossentropy": lambda y, z: jaxloss.binary_crossentropy(y, z, from_logits=True),
    "binary_focal_crossentropy(balanced)": lambda y, z: jaxloss.binary_focal_crossentropy(
        y, z, apply_class_balancing=True, alpha=0.9, gamma=0.5, from_logits=True
    ),
}


@functools.partial(jax.jit, static_argnames="sizes")
def init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> list[dict[str, jax.Array]]:
    params = []
    for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), itertools.pairwise(sizes), strict=True):
        params.append({"w": jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(2.0 / n_in), "b": jnp.zeros(n_out)})
    return params


def mlp(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"][None, :])
    return x @ params[-1]["w"] + params[-1]["b"][None, :]


def load_data(seed: int):
    x, y = make_classification(
        n_samples=20_000,
        n_features=20,
        n_informative=8,
        n_redundant=2,
        n_clusters_per_class=4,
        weights=[50 / 51],
        class_sep=1.5,
        flip_y=0.0,
        random_state=seed,
    )
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(x_train)
    return (
        scaler.transform(x_train).astype(np.float32),
        y_train.astype(np.float32)[:, None],
        scaler.transform(x_test).astype(np.float32),
        y_test,
    )


def train(objective, data, steps: int, seed: int):
    x_train, y_train, x_test, _ = data
    params = init_mlp(jax.random.key(seed), (x_train.shape[1], 64, 64, 1))
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    opt_state = jax.jit(optimizer.init)(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        loss, grads = jax.value_and_grad(lambda p: objective(yb, mlp(p, xb)))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    curve = []
    for _ in (bar := tqdm(range(steps), leave=False, ncols=88, mininterval=0.5, disable=None)):
        idx = rng.choice(len(x_train), size=BATCH, replace=False)
        params, opt_state, loss = step(params, opt_state, x_train[idx], y_train[idx])
        curve.append(float(loss))
        bar.set_postfix(loss=f"{curve[-1]:.4f}")
    return curve, np.asarray(mlp(params, x_test))[:, 0]


def recall_at_precision(y_true: np.ndarray, scores: np.ndarray, precision: float) -> float:
    """The largest recall of any threshold whose precision is at least ``precision``."""
    precisions, recalls, _ = precision_recall_curve(y_true, scores)
    reachable = precisions >= precision
    return float(recalls[reachable].max()) if reachable.any() else 0.0


def plot(scores: dict[str, np.ndarray], y_test: np.ndarray, metrics, out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_pr, ax_scores) = plt.subplots(1, 2, figsize=(10, 4))
    for name, s in scores.items():
        precisions, recalls, _ = precision_recall_curve(y_test, s)
        m = metrics[name]
        (line,) = ax_pr.plot(recalls, precisions, label=f"{name} (PR-AUC {m['pr_auc']:.3f})")
        ax_pr.plot([m["recall_at_precision"]], [PRECISION], "o", color=line.get_color())
        bins = np.linspace(-15, 10, 51)
        ax_scores.hist(s[y_test == 1], bins=bins, density=True, histtype="step", color=line.get_color(), lw=1.5)
        ax_scores.hist(s[y_test == 0], bins=bins, density=True, histtype="step", color=line.get_color(), ls=":")
    ax_pr.axhline(PRECISION, color="grey", ls="--", lw=0.8)
    ax_pr.axhline(y_test.mean(), color="k", ls=":", lw=0.8, label=f"chance ({y_test.mean():.3f})")
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall (held out)", xlim=(0, 1), ylim=(0, 1.02))
    ax_pr.legend(fontsize=7, loc="lower left")
    ax_scores.set(xlabel="logit", ylabel="density", title="Held-out logits: positives (solid), negatives (dotted)")
    fig.tight_layout()
    fig.savefig(out / "imbalanced_binary.png", dpi=80)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_data(args.seed)
    y_test = data[3]
    print(
        f"make_classification: {len(data[0])} training rows ({int(data[1].sum())} positive), "
        f"{len(y_test)} held out ({int(y_test.sum())} positive); jax {jax.__version__} on {jax.devices()[0]}"
    )
    curves, scores = {}, {}
    for name, objective in OBJECTIVES.items():
        print(f"training with {name} ...")
        curves[name], scores[name] = train(objective, data, args.steps, args.seed)

    metrics = {}
    print(f"\n{'loss':<38} {'final loss':>10} {'PR-AUC':>7} {f'recall @ {PRECISION:.0%} precision':>24}")
    for name, s in scores.items():
        metrics[name] = {
            "pr_auc": float(average_precision_score(y_test, s)),
            "recall_at_precision": recall_at_precision(y_test, s, PRECISION),
        }
        m = metrics[name]
        print(f"{name:<38} {np.mean(curves[name][-20:]):>10.4f} {m['pr_auc']:>7.3f} {m['recall_at_precision']:>24.1%}")
    print(f"(chance PR-AUC: {y_test.mean():.3f})")
    plot(scores, y_test, metrics, args.out)
    print(f"\nwrote {args.out / 'imbalanced_binary.png'}")
    return metrics


if __name__ == "__main__":
    main()
