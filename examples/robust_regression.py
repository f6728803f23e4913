"""Fit scikit-learn's diabetes data, with corrupted training targets, with three jaxloss losses.

A tenth of the training targets get gross one-sided errors (a data-entry slip
that adds 250 to 500 to the recorded disease progression). A linear model is
fitted to them with mean squared error, huber and log_cosh (plus mean squared
error on the clean targets, for reference); the table gives each fit's
held-out mean absolute error on clean targets, and the PNG shows the held-out
residuals. Squared error chases the outliers; the robust losses do not.
Nothing is downloaded.

    python examples/robust_regression.py [--steps 500] [--out results/]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

import jaxloss

OUTLIER_FRACTION = 0.1

# Each objective maps (targets, predictions), both (batch, 1) and in robust units, to a scalar.
OBJECTIVES = {
    "mean_squared_error": jaxloss.mean_squared_error,
    "huber(delta=1.0)": lambda y, p: jaxloss.huber(y, p, delta=1.0),
    "log_cosh": jaxloss.log_cosh,
}
REFERENCE = "mean_squared_error, clean targets"


def linear(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    return x @ params["w"] + params["b"][None, :]


def load_data(seed: int):
    """Standardized features; targets centred and scaled by the training targets' median and IQR."""
    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed)
    rng = np.random.default_rng(seed)
    corrupted = rng.choice(len(y_train), size=round(OUTLIER_FRACTION * len(y_train)), replace=False)
    y_noisy = y_train.copy()
    y_noisy[corrupted] += rng.uniform(250.0, 500.0, size=len(corrupted))
    # Robust statistics, so the outliers do not set the units the losses see (huber's delta is in these units).
    centre = np.median(y_noisy)
    scale = np.subtract(*np.percentile(y_noisy, [75, 25]))
    scaler = StandardScaler().fit(x_train)
    return {
        "x_train": scaler.transform(x_train).astype(np.float32),
        "y_train": ((y_noisy - centre) / scale).astype(np.float32)[:, None],
        "y_train_clean": ((y_train - centre) / scale).astype(np.float32)[:, None],
        "x_test": scaler.transform(x_test).astype(np.float32),
        "y_test": y_test,
        "corrupted": corrupted,
        "centre": centre,
        "scale": scale,
    }


def fit(objective, x, y, steps: int, seed: int):
    params = {"w": jax.random.normal(jax.random.key(seed), (x.shape[1], 1)) * 0.01, "b": jnp.zeros(1)}
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(0.05, steps)))
    opt_state = jax.jit(optimizer.init)(params)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(lambda p: objective(y, linear(p, x)))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    for _ in (bar := tqdm(range(steps), leave=False, ncols=88, mininterval=0.5, disable=None)):
        params, opt_state, loss = step(params, opt_state)
        bar.set_postfix(loss=f"{float(loss):.4f}")
    return params, float(loss)


def plot(residuals: dict[str, np.ndarray], train_residuals: dict[str, np.ndarray], corrupted, out: pathlib.Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_box, ax_train) = plt.subplots(1, 2, figsize=(10, 4))
    names = list(residuals)
    # matplotlib 3.10 replaced vert=False by orientation="horizontal".
    version = tuple(int(part) for part in matplotlib.__version__.split(".")[:2])
    horizontal = {"orientation": "horizontal"} if version >= (3, 10) else {"vert": False}
    ax_box.boxplot([residuals[n] for n in names], showmeans=True, **horizontal)
    ax_box.set_yticks(range(1, len(names) + 1), [n.replace(", ", ",\n") for n in names], fontsize=8)
    ax_box.invert_yaxis()
    ax_box.axvline(0.0, color="grey", lw=0.8)
    ax_box.set(xlabel="held-out residual (true - predicted)", title="Residuals on clean held-out data")
    is_corrupted = np.zeros(len(next(iter(train_residuals.values()))), dtype=bool)
    is_corrupted[corrupted] = True
    for name in ("mean_squared_error", "huber(delta=1.0)"):
        r = train_residuals[name]
        (line,) = ax_train.plot(np.flatnonzero(~is_corrupted), r[~is_corrupted], ".", ms=4, alpha=0.6, label=name)
        ax_train.plot(np.flatnonzero(is_corrupted), r[is_corrupted], "x", color=line.get_color(), ms=6)
    ax_train.axhline(0.0, color="grey", lw=0.8)
    ax_train.set(
        xlabel="training row (x: corrupted target)",
        ylabel="residual (recorded - predicted)",
        title="Training residuals",
    )
    ax_train.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "robust_regression.png", dpi=80)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_data(args.seed)
    print(
        f"diabetes: {len(data['x_train'])} training rows ({len(data['corrupted'])} with corrupted targets), "
        f"{len(data['x_test'])} clean held-out rows; jax {jax.__version__} on {jax.devices()[0]}"
    )
    runs = {name: (objective, data["y_train"]) for name, objective in OBJECTIVES.items()}
    runs[REFERENCE] = (jaxloss.mean_squared_error, data["y_train_clean"])
    final_losses, residuals, train_residuals = {}, {}, {}
    for name, (objective, y_train) in runs.items():
        print(f"fitting with {name} ...")
        params, final_losses[name] = fit(objective, data["x_train"], y_train, args.steps, args.seed)
        predicted = np.asarray(linear(params, data["x_test"]))[:, 0] * data["scale"] + data["centre"]
        residuals[name] = data["y_test"] - predicted
        train_residuals[name] = (data["y_train"] - np.asarray(linear(params, data["x_train"])))[:, 0] * data["scale"]

    print(f"\n{'loss':<34} {'final loss':>10} {'held-out MAE':>13} {'median residual':>16}")
    maes = {}
    for name, r in residuals.items():
        maes[name] = float(np.abs(r).mean())
        print(f"{name:<34} {final_losses[name]:>10.4f} {maes[name]:>13.2f} {np.median(r):>+16.2f}")
    plot(residuals, train_residuals, data["corrupted"], args.out)
    print(f"\nwrote {args.out / 'robust_regression.png'}")
    return maes


if __name__ == "__main__":
    main()
