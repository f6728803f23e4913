"""Compile latency of ``jax.jit(jax.grad(loss))`` against optax's equal, and compile counts.

Trace, lower and XLA compile at 64 x 16 and 256 x 256 with fresh caches, the two
interleaved, the minimum of 9 rounds (the least disturbed round on a shared machine); then
how many programs a sweep of Python-float option values and repeated ``jaxloss.grad``
factories compile; then an eager ``jax.grad`` (no ``jit``) of a loss against optax's
equal: the programs its first call compiles and the median time of a call after it.

At 64 x 16 the elementwise gradient is one loop of 1,024 elements, which LLVM unrolls and
vectorizes whole on XLA:CPU when the fused kernel is cheap (``jnp.sign``, ``tanh``): that
kernel compiles several times slower than optax's, whose kernel LLVM leaves as a loop. The
trace and lowering, what jaxloss itself adds, are the same as optax's; at 256 x 256 the
loop is not unrolled and the compile times match.

    python benchmarks/compile_time.py [latency] [counts] [eager]   (default: all three)
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss


def _compile_seconds(f, *args) -> float:
    jax.clear_caches()
    start = time.perf_counter()
    jax.jit(jax.grad(f, argnums=1)).lower(*args).compile()
    return time.perf_counter() - start


def latency(n: int, c: int) -> None:
    r = np.random.default_rng(0)
    p = jnp.asarray(r.normal(size=(n, c)), jnp.float32)
    t = jnp.asarray(r.normal(size=(n, c)), jnp.float32)
    onehot = jax.nn.one_hot(r.integers(0, c, n), c)
    labels = jnp.asarray(r.integers(0, c, n))
    b = jnp.asarray(r.integers(0, 2, (n, c)), jnp.float32)
    losses = optax.losses
    cases = {
        "huber": (lambda t, p: jaxloss.huber(t, p), lambda t, p: losses.huber_loss(p, t).mean(), t),
        "mse": (lambda t, p: jaxloss.mean_squared_error(t, p), lambda t, p: losses.squared_error(p, t).mean(), t),
        "log_cosh": (lambda t, p: jaxloss.log_cosh(t, p), lambda t, p: losses.log_cosh(p, t).mean(), t),
        "bce_logits": (
            lambda t, p: jaxloss.binary_crossentropy(t, p, from_logits=True),
            lambda t, p: losses.sigmoid_binary_cross_entropy(p, t).mean(),
            b,
        ),
        "cce_logits": (
            lambda t, p: jaxloss.categorical_crossentropy(t, p, from_logits=True),
            lambda t, p: losses.softmax_cross_entropy(p, t).mean(),
            onehot,
        ),
        "scce_logits": (
            lambda t, p: jaxloss.sparse_categorical_crossentropy(t, p, from_logits=True),
            lambda t, p: losses.softmax_cross_entropy_with_integer_labels(p, t).mean(),
            labels,
        ),
        "sigmoid_focal": (
            lambda t, p: jaxloss.sigmoid_focal(t, p),
            lambda t, p: losses.sigmoid_focal_loss(p, t).mean(),
            b,
        ),
    }
    print(f"{'loss':<14} {'shape':>8} {'jaxloss ms':>10} {'optax ms':>9} {'ratio':>6}")
    for name, (ours, theirs, y_true) in cases.items():
        a, o = [], []
        for _ in range(9):
            a.append(_compile_seconds(ours, y_true, p))
            o.append(_compile_seconds(theirs, y_true, p))
        print(f"{name:<14} {f'{n}x{c}':>8} {min(a) * 1e3:10.1f} {min(o) * 1e3:9.1f} {min(a) / min(o):6.2f}")


@contextlib.contextmanager
def _compilations() -> Iterator[Callable[[], int]]:
    """Within the block, a function giving how many programs jax has compiled since it began."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger("jax").addHandler(handler)
    try:
        with jax.log_compiles(True):
            yield lambda: stream.getvalue().count("Compiling")
    finally:
        logging.getLogger("jax").removeHandler(handler)


def counts() -> None:
    r = np.random.default_rng(0)
    y = jnp.asarray(r.integers(0, 10, 64))
    z = jnp.asarray(r.normal(size=(64, 10)), jnp.float32)
    t = jnp.asarray(r.normal(size=(64, 16)), jnp.float32)
    p = jnp.asarray(r.normal(size=(64, 16)), jnp.float32)
    sweeps = {
        "scce label_smoothing, 10 values": lambda i: jaxloss.sparse_categorical_crossentropy(
            y, z, from_logits=True, label_smoothing=0.01 * (i + 1)
        ),
        "huber delta, 10 values": lambda i: jaxloss.huber(t, p, delta=0.1 * (i + 1)),
        "jaxloss.grad(huber)(...), 10 calls": lambda i: jaxloss.grad(jaxloss.huber)(t, p),
    }
    for label, call in sweeps.items():
        with _compilations() as compiled:
            start = time.perf_counter()
            for i in range(10):
                jax.block_until_ready(call(i))
            seconds = time.perf_counter() - start
            n = compiled()
        print(f"{label:<38} compilations {n:>3}  {seconds * 1e3:8.0f} ms")


def _eager(f, *args) -> tuple[int, float, float]:
    """Programs compiled by the first eager call of ``f``, its seconds, the median of 15 more."""
    with _compilations() as compiled:
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        first = time.perf_counter() - start
        n = compiled()
    times = []
    for _ in range(15):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - start)
    return n, first, float(np.median(times))


def eager() -> None:
    r = np.random.default_rng(0)
    t, p = (jnp.asarray(r.normal(size=(32, 8)), jnp.float32) for _ in range(2))
    onehot = jax.nn.one_hot(r.integers(0, 8, 32), 8)
    labels = jnp.asarray(r.integers(1, 5, (4, 3)), jnp.int32)
    logits = jnp.asarray(r.normal(size=(4, 10, 6)), jnp.float32)
    zeros = jnp.zeros((4, 10)), jnp.zeros((4, 3))
    losses = optax.losses
    cases = {
        "huber": (lambda q: jaxloss.huber(t, q), lambda q: losses.huber_loss(q, t).mean(), p),
        "cce_logits": (
            lambda q: jaxloss.categorical_crossentropy(onehot, q, from_logits=True),
            lambda q: losses.softmax_cross_entropy(q, onehot).mean(),
            p,
        ),
        "ctc": (
            lambda q: jaxloss.ctc(labels, q),
            lambda q: losses.ctc_loss(q, zeros[0], labels, zeros[1]).mean(),
            logits,
        ),
    }
    print(
        f"{'eager jax.grad':<14} {'programs':>8} {'first ms':>9} {'us/call':>8} | {'optax':>5} {'first ms':>9} {'us/call':>8} | ratio"
    )
    for name, (ours, theirs, x) in cases.items():
        jax.clear_caches()
        n, first, call = _eager(jax.grad(ours), x)
        m, first_o, call_o = _eager(jax.grad(theirs), x)
        print(
            f"{name:<14} {n:>8} {first * 1e3:9.0f} {call * 1e6:8.0f} | {m:>5} {first_o * 1e3:9.0f} "
            f"{call_o * 1e6:8.0f} | {call / call_o:5.2f}"
        )


if __name__ == "__main__":
    parts = sys.argv[1:] or ["latency", "counts", "eager"]
    if "latency" in parts:
        latency(64, 16)
        latency(256, 256)
    if "counts" in parts:
        counts()
    if "eager" in parts:
        eager()
