"""A character-level language model trained with ``jaxloss.linear_cross_entropy`` as its LM head.

The corpus is text that ships with Python: the docstrings of standard-library
modules and of their public functions and classes (nothing is downloaded). Each
training sequence is a window of one docstring, padded at the end with the padding
token, whose labels ``linear_cross_entropy`` leaves out (``ignore_class``); the
z-loss keeps the log-normalizer near 0. The model is small and causal: each
position's hidden state is an MLP of the embeddings of the last ``--window``
characters (a neural n-gram, which learns within the few hundred steps that a
minute allows, where a transformer of the same cost is still near bigram
statistics). Its output head is its input embedding (tied embeddings): the
``(V, d)`` table goes to the loss as it is (``weight_layout="vd"``) with the
``(batch, time, d)`` hidden states, and the loss never forms the
``(batch, time, V)`` logits.

The PNG shows the training and held-out loss (bits per character), a few samples
generated from prompts, and the temporary memory XLA's compiler allots to the
loss's value and gradient at a large vocabulary, against the naive
``logits = hidden @ embedding.T`` then crossentropy (``memory_analysis``, compile
only).

    python examples/lm_head.py [--steps 400] [--out results/]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import math
import pathlib
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss

PAD = 0  # the padding token: a row of the embedding, and the label left out of the loss
MODULES = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "concurrent.futures", "configparser",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "email", "enum", "fnmatch",
    "fractions", "functools", "glob", "gzip", "hashlib", "heapq", "hmac", "html", "http.client", "imaplib",
    "inspect", "io", "ipaddress", "itertools", "json", "logging", "mailbox", "math", "operator", "optparse",
    "os", "pathlib", "pickle", "platform", "pprint", "queue", "random", "re", "secrets", "shlex", "shutil",
    "smtplib", "socket", "sqlite3", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap",
    "threading", "timeit", "tokenize", "traceback", "types", "typing", "unittest", "urllib.parse", "uuid",
    "warnings", "weakref", "xml.dom.minidom", "zipfile",
)  # fmt: skip


# --------------------------------------------------------------------------
# Data: standard-library docstrings, as characters
# --------------------------------------------------------------------------


def docstrings() -> list[str]:
    """Module docstrings and the docstrings of their public members, in a fixed order, ASCII only."""
    docs, seen = [], set()
    with warnings.catch_warnings():  # some members are deprecated aliases (typing.io), which warn when read
        warnings.simplefilter("ignore")
        for name in MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:  # a build without, say, sqlite3
                continue
            members = [module] + [getattr(module, m) for m in sorted(vars(module)) if not m.startswith("_")]
            for obj in members:
                doc = inspect.getdoc(obj) if (inspect.ismodule(obj) or callable(obj)) else None
                if doc and len(doc) >= 80 and doc not in seen and doc.isascii():
                    seen.add(doc)
                    docs.append(doc)
    return docs


def vocabulary(docs: list[str]) -> list[str]:
    """The characters of the corpus; index 0 is the padding token."""
    return ["<pad>", *sorted(set("".join(docs)))]


def encode(text: str, index: dict[str, int]) -> np.ndarray:
    return np.array([index[c] for c in text], np.int32)


def batches(docs: list[np.ndarray], batch: int, context: int, rng: np.random.Generator):
    """Windows of ``context + 1`` tokens from random docstrings; a short one is padded at the end."""
    while True:
        out = np.full((batch, context + 1), PAD, np.int32)
        for row, i in enumerate(rng.integers(0, len(docs), batch)):
            doc = docs[i]
            start = rng.integers(0, max(len(doc) - context, 1))
            piece = doc[start : start + context + 1]
            out[row, : len(piece)] = piece
        yield out[:, :-1], out[:, 1:]


# --------------------------------------------------------------------------
# Model: a causal MLP over the last characters, with a tied embedding
# --------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def init(key: jax.Array, vocab: int, d: int, window: int, width: int) -> dict:
    k_embed, k_up, k_down = jax.random.split(key, 3)
    return {
        "embedding": jax.random.normal(k_embed, (vocab, d)) * 0.02,  # (V, d): input table and output head
        "up": jax.random.normal(k_up, (window * d, width)) / math.sqrt(window * d),
        "down": jax.random.normal(k_down, (width, d)) / math.sqrt(width),
        "norm": jnp.ones(d),
    }


def hidden_states(params: dict, tokens: jax.Array) -> jax.Array:
    """``(B, T)`` tokens to ``(B, T, d)`` hidden states, before the head.

    Position ``t`` sees the embeddings of tokens ``t - window + 1 .. t`` (padding before the start).
    """
    e = params["embedding"][tokens]
    t = e.shape[1]
    window = params["up"].shape[0] // e.shape[2]
    recent = jnp.concatenate([jnp.pad(e, ((0, 0), (j, 0), (0, 0)))[:, :t, :] for j in range(window)], axis=-1)
    x = e + jax.nn.gelu(recent @ params["up"]) @ params["down"]
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + 1e-6) * params["norm"][None, None, :]


def loss_fn(params: dict, tokens: jax.Array, labels: jax.Array, z_loss: float) -> jax.Array:
    h = hidden_states(params, tokens)  # (B, T, d)
    return jaxloss.linear_cross_entropy(
        labels, h, params["embedding"], weight_layout="vd", ignore_class=PAD, z_loss=z_loss
    )


@jax.jit
def next_token(params: dict, window: jax.Array, n: jax.Array, key: jax.Array, temperature: float) -> jax.Array:
    """Sample after the first ``n`` tokens of ``window``: the logits of one position, ``h @ embedding.T``."""
    h = hidden_states(params, window[None, :])[0, n - 1]
    logits = (params["embedding"] @ h).at[PAD].set(-jnp.inf)
    return jax.random.categorical(key, logits / temperature)


@jax.jit
def both_losses(params: dict, tokens: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """linear_cross_entropy, and the same loss on the explicit ``(B, T, V)`` logits."""
    h = hidden_states(params, tokens)
    logits = jnp.einsum("btd,vd->btv", h, params["embedding"])
    naive = jaxloss.sparse_categorical_crossentropy(labels, logits, from_logits=True, ignore_class=PAD)
    ours = jaxloss.linear_cross_entropy(labels, h, params["embedding"], weight_layout="vd", ignore_class=PAD)
    return ours, naive


def sample(params: dict, prompt: np.ndarray, length: int, context: int, key: jax.Array, temperature: float):
    tokens = list(prompt)
    for k in jax.random.split(key, length):
        window = np.full(context, PAD, np.int32)
        recent = tokens[-context:]
        window[: len(recent)] = recent
        tokens.append(int(next_token(params, window, len(recent), k, temperature)))
    return tokens


# --------------------------------------------------------------------------
# The loss's memory at a large vocabulary (compile only)
# --------------------------------------------------------------------------


def head_memory(tokens: int, d: int, vocabs: list[int]) -> list[dict[str, float]]:
    """Temporary memory of value-and-gradient (w.r.t. hidden and the (V, d) table), from ``memory_analysis``."""
    spec = jax.ShapeDtypeStruct

    def naive(h, e, y):
        logits = h @ e.T
        return jaxloss.sparse_categorical_crossentropy(y, logits, from_logits=True, ignore_class=PAD)

    def ours(h, e, y):
        return jaxloss.linear_cross_entropy(y, h, e, weight_layout="vd", ignore_class=PAD, z_loss=1e-4)

    rows = []
    for v in vocabs:
        row = {"vocab": v}
        for name, fn in (("naive", naive), ("linear_cross_entropy", ours)):
            compiled = (
                jax.jit(jax.value_and_grad(fn, (0, 1)))
                .lower(spec((tokens, d), jnp.float32), spec((v, d), jnp.float32), spec((tokens,), jnp.int32))
                .compile()
            )
            row[name] = compiled.memory_analysis().temp_size_in_bytes / 2**20
        rows.append(row)
    return rows


# --------------------------------------------------------------------------
# Training and the figure
# --------------------------------------------------------------------------


def train(args, train_docs, held_out, vocab):
    params = init(jax.random.key(args.seed), len(vocab), args.d, args.window, args.width)
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(50, args.steps // 10 + 1), max(args.steps, 2))
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.01))
    opt_state = jax.jit(optimizer.init)(params)
    z_loss = 1e-4

    @jax.jit
    def step(params, opt_state, tokens, labels):
        loss, grads = jax.value_and_grad(loss_fn)(params, tokens, labels, z_loss)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    evaluate = jax.jit(lambda p, x, y: loss_fn(p, x, y, 0.0))
    rng = np.random.default_rng(args.seed)
    data = batches(train_docs, args.batch, args.context, rng)
    held = [next(batches(held_out, args.batch, args.context, np.random.default_rng(k))) for k in range(4)]
    curve = {"step": [], "train": [], "held_out_step": [], "held_out": []}
    for i in range(args.steps):
        tokens, labels = next(data)
        params, opt_state, loss = step(params, opt_state, tokens, labels)
        curve["step"].append(i)
        curve["train"].append(float(loss) / math.log(2))  # bits per character (with the small z-loss)
        if i % max(args.steps // 10, 1) == 0 or i == args.steps - 1:
            value = np.mean([float(evaluate(params, x, y)) for x, y in held]) / math.log(2)
            curve["held_out_step"].append(i)
            curve["held_out"].append(float(value))
            print(f"step {i:4d}  train {curve['train'][-1]:.3f}  held-out {value:.3f} bits/char", flush=True)
    return params, curve, held


def plot(curve, samples, memory, out: pathlib.Path, title: str) -> pathlib.Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 7))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 0.62])
    ax_loss, ax_mem = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    smooth = np.convolve(curve["train"], np.ones(10) / 10, mode="valid")
    ax_loss.plot(np.arange(len(smooth)) + 9, smooth, label="training batch (moving average of 10)")
    ax_loss.plot(curve["held_out_step"], curve["held_out"], "o-", label="held-out docstrings")
    ax_loss.set(xlabel="step", ylabel="bits per character", title=title)
    ax_loss.legend(fontsize=8)

    x = np.arange(len(memory))
    width = 0.38
    naive = [r["naive"] for r in memory]
    ours = [r["linear_cross_entropy"] for r in memory]
    ax_mem.bar(x - width / 2, naive, width, label="hidden @ embedding.T, then crossentropy")
    ax_mem.bar(x + width / 2, ours, width, label='linear_cross_entropy(weight_layout="vd")')
    for i, (a, b) in enumerate(zip(naive, ours, strict=True)):
        ax_mem.text(i - width / 2, a, f"{a:,.0f}", ha="center", va="bottom", fontsize=8)
        ax_mem.text(i + width / 2, b, f"{b:,.0f}", ha="center", va="bottom", fontsize=8)
    ax_mem.set_xticks(x, [f"V = {r['vocab']:,}" for r in memory])
    ax_mem.set_yscale("log")
    ax_mem.set_ylim(top=max(naive) * 30)  # room for the legend above the bars
    ax_mem.set(
        ylabel="temporary memory (MiB)",
        title=f"The loss's value and gradient, {memory[0]['tokens']:,} tokens, d = {memory[0]['d']}\n"
        "(XLA's memory_analysis, compile only)",
    )
    ax_mem.legend(fontsize=8, loc="upper left")

    ax_text = fig.add_subplot(grid[1, :])
    ax_text.axis("off")
    ax_text.set_title("Samples (temperature 0.7); the prompt is in bold", fontsize=10, loc="left")
    y = 0.98
    for prompt, text in samples:
        body = text[len(prompt) :].replace("\n", " / ")
        ax_text.text(
            0.0, y, prompt, fontsize=9, family="monospace", weight="bold", va="top", transform=ax_text.transAxes
        )
        ax_text.text(
            0.0,
            y - 0.1,
            body[:110] + "\n" + body[110:220],
            fontsize=9,
            family="monospace",
            va="top",
            transform=ax_text.transAxes,
        )
        y -= 0.34
    fig.tight_layout()
    path = out / "lm_head.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--d", type=int, default=64, help="embedding and hidden size")
    parser.add_argument("--window", type=int, default=12, help="characters each position sees")
    parser.add_argument("--width", type=int, default=256, help="the MLP's hidden width")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    docs = docstrings()
    vocab = vocabulary(docs)
    index = {c: i for i, c in enumerate(vocab)}
    order = np.random.default_rng(args.seed).permutation(len(docs))
    encoded = [encode(docs[i], index) for i in order]
    held_out, train_docs = encoded[: len(encoded) // 10], encoded[len(encoded) // 10 :]
    chars = sum(map(len, encoded))
    print(
        f"{len(docs)} standard-library docstrings, {chars:,} characters, V = {len(vocab)} (with padding); "
        f"jax {jax.__version__} on {jax.devices()[0]}"
    )
    params, curve, held = train(args, train_docs, held_out, vocab)

    # The loss equals the naive form on the explicit logits (the same value, without the (B, T, V) array).
    ours, naive = both_losses(params, *held[0])
    print(f"held-out batch: linear_cross_entropy {float(ours):.6f}, naive {float(naive):.6f}")

    samples = []
    prompts = ["Return the ", "If the file ", "This module provides "]
    for prompt, key in zip(prompts, jax.random.split(jax.random.key(args.seed + 1), len(prompts)), strict=True):
        out = sample(params, encode(prompt, index), 200, args.context, key, temperature=0.7)
        text = "".join(vocab[t] if t != PAD else "" for t in out)
        samples.append((prompt, text))
        print(f"\n--- {text!r}")

    tokens_at_scale, d_at_scale = 8192, 512
    memory = head_memory(tokens_at_scale, d_at_scale, [32768, 131072, 262144])
    for r in memory:
        r.update(tokens=tokens_at_scale, d=d_at_scale)
        print(
            f"V = {r['vocab']:>7,}: value-and-gradient temp {r['naive']:9,.0f} MiB naive, "
            f"{r['linear_cross_entropy']:6,.0f} MiB linear_cross_entropy"
        )
    title = (
        f"Character LM with a tied (V, d) embedding, d = {args.d}, window {args.window}\n"
        f"{args.steps} steps of {args.batch} x {args.context} characters"
    )
    path = plot(curve, samples, memory, args.out, title)
    elapsed = time.perf_counter() - start
    print(f"\nfigure: {path}  ({elapsed:.0f} s)")
    return {
        "first_train_bits": curve["train"][0],
        "final_held_out_bits": curve["held_out"][-1],
        "first_held_out_bits": curve["held_out"][0],
        "naive_minus_ours": abs(float(naive) - float(ours)),
        "memory": memory,
        "samples": [t for _, t in samples],
        "vocab_size": len(vocab),
        "seconds": elapsed,
    }


if __name__ == "__main__":
    main()
