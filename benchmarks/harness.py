"""The benchmark behind ``python -m benchmarks`` (and ``python -m jaxloss bench``).

For every registered loss (:func:`jaxloss.declarations`), with the options and
input shape its declaration's ``bench`` names and inputs drawn from its domains,
at every size and dtype, it compiles jitted value-and-gradient (with respect to
``y_pred``) of:

- ``jaxloss``: ``jax.value_and_grad`` through the public loss, what a training step runs;
- ``closed_form``: the public loss and ``analytic_grad`` (the hand-written gradient) in one jit;
- ``autodiff``: ``jax.value_and_grad`` of the loss's plain per-sample formula (no custom rule);
- ``optax``: the declaration's optax peer, averaged to the same scalar;
- ``keras``: Keras 3's loss class on the JAX backend;
- ``torch``: the declaration's PyTorch peer, averaged, ``loss.backward()``, when torch is importable;
- ``floor``: ``y_pred - y_true``, reading two arrays and writing one: the least any
  value-and-gradient must move.

A peer gives per-sample values; their mean is jaxloss's default
``"sum_over_batch_size"`` reduction for an unmasked loss. On the smallest size,
each peer's value and gradient are checked against jaxloss's and a disagreement
is flagged. Then the implementations are timed interleaved round by round (the
order rotates each round) and the report gives, per peer, the median over
rounds of the ratio ``jaxloss / peer``, so that machine noise common to a round
cancels. Compile time, XLA's temp and peak memory (``memory_analysis``) and bytes
accessed (``cost_analysis``) are recorded beside each time. Outputs: a table on
stdout, ``bench.json``, ``bench.txt`` and ``bench.png`` (time per element against
size) in ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxloss

from .malloc import MALLOC_ENV, mmapped_blocks, settings_in_effect

SCHEMA = "jaxloss-bench/2"
IMPLS = ("jaxloss", "closed_form", "autodiff", "optax", "keras", "torch", "floor")
PEERS = IMPLS[1:]
DEFAULT_PEERS = tuple(p for p in PEERS if p != "closed_form")
# 1e4 to 8.4e6 elements, float32 and bfloat16, every loss: about 300 s of CPU time, five
# minutes on two idle cores (--quick: about 75 s). The full sweep adds 1e5 and 3e7:
# --sizes 1e4,1e5,1e6,8192x1024,3e7 (about 15 minutes).
DEFAULT_SIZES = "1e4,1e6,8192x1024"
FULL_SIZES = "1e4,1e5,1e6,8192x1024,3e7"
QUICK_SIZES = "1e4,1e5"
DTYPES = ("float32", "bfloat16")
# A loss without its own bench shape runs on (elements / WIDTH, WIDTH): the targets' size,
# 8192 x 1024, is exactly ``--sizes 8192x1024``.
WIDTH = 1024
TARGET_ELEMENTS = 8192 * 1024
MAX_DRAWN = TARGET_ELEMENTS
SPARSE_CHECK = (4096, 32768)
# Peers agree with jaxloss within these (relative to the largest |value| / |gradient|):
# Keras clips probabilities and optax takes other epsilons, so looser than the test suite.
AGREEMENT = {"float32": 2e-3, "bfloat16": 4e-2, "float16": 1e-2}
POLYNOMIAL, TRANSCENDENTAL = "polynomial", "transcendental"


# ----------------------------------------------------------------------------
# Cases: one per registered loss, from its declaration
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmarked configuration: a declaration and its ``bench`` settings."""

    spec: Any  # the loss's declaration (an item of jaxloss.declarations())

    @property
    def loss(self) -> str:
        return self.spec.name

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.spec.bench.options)

    @property
    def all_options(self) -> dict[str, Any]:
        """Every option, defaults included: what peers and ``keras_options`` receive."""
        return {**self.spec.defaults, **self.options}

    @property
    def family(self) -> str | None:
        return self.spec.bench.family

    @property
    def max_elements(self) -> int | None:
        return self.spec.bench.max_elements

    @property
    def label(self) -> str:
        opts = ",".join("logits" if (k, v) == ("from_logits", True) else f"{k}={v}" for k, v in self.options.items())
        return f"{self.loss}[{opts}]" if opts else self.loss

    @property
    def crossentropy(self) -> bool:
        """The targets' ">= 2x faster than Keras on every cross-entropy"."""
        return "crossentropy" in self.loss or "cross_entropy" in self.loss

    def shape(self, elements: int) -> tuple[int, ...]:
        """``y_pred``'s shape for about ``elements`` entries."""
        if self.spec.bench.shape is not None:
            return tuple(self.spec.bench.shape(elements))
        return (max(1, round(elements / WIDTH)), WIDTH)

    def peer(self, library: str) -> Any:
        """The declaration's first peer from ``library`` that applies to the bench options, or None."""
        opts = self.all_options
        return next((p for p in self.spec.peers if p.library == library and p.applies(opts)), None)

    def example(self) -> Any:
        """The loss's own example with the bench options, whose drawing overrides (one-hot
        targets where the domain allows soft ones) say what inputs those options are meant
        for; else the bench options on the plain domains."""
        for example in self.spec.examples:
            if _same_options(example.options, self.options):
                return dataclasses.replace(example, draw=None, label="bench")
        return dataclasses.replace(self.spec.examples[0], options=self.options, inputs=None, draw=None, label="bench")

    def draw(self, rng: np.random.Generator, elements: int) -> tuple[np.ndarray, np.ndarray]:
        """Host inputs: float32, or int32 labels.

        Beyond :data:`MAX_DRAWN` elements (the sizes that fill a GPU), the rows drawn at that
        size repeat along the batch axis: drawing from the domains takes longer than the
        benchmark of a case there, and each row stays a valid sample.
        """
        shape = self.shape(elements)
        drawn = self.shape(min(elements, MAX_DRAWN))
        y_true, y_pred = self.spec.draw(self.example(), rng, shape=drawn)
        y_true, y_pred = _host(y_true), _host(y_pred)
        if drawn != shape and drawn[1:] == shape[1:] and y_true.shape[:1] == drawn[:1]:
            return _repeat_rows(y_true, shape[0]), _repeat_rows(y_pred, shape[0])
        if drawn != shape:
            y_true, y_pred = self.spec.draw(self.example(), rng, shape=shape)
            return _host(y_true), _host(y_pred)
        return y_true, y_pred


def _repeat_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """``x``'s rows repeated to ``rows`` along axis 0 (by broadcast copies: np.tile is far slower)."""
    out = np.empty((rows, *x.shape[1:]), x.dtype)
    whole = rows // len(x)
    out[: whole * len(x)].reshape(whole, *x.shape)[:] = x
    out[whole * len(x) :] = x[: rows - whole * len(x)]
    return out


def _same_options(a: Any, b: Any) -> bool:
    if set(a) != set(b):
        return False
    return all(type(a[k]) is type(b[k]) and not hasattr(a[k], "shape") and a[k] == b[k] for k in a)


def _host(x: Any) -> np.ndarray:
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        return x.astype(np.int32)
    return x.astype(np.float32)


def all_cases() -> list[Case]:
    """One case per registered loss; linear_cross_entropy (no ``bench``) has its own
    benchmark, benchmarks/bench_linear_ce.py."""
    return [Case(spec) for spec in jaxloss.declarations() if spec.bench is not None]


def select_cases(names: str | None) -> list[Case]:
    """Every registered loss, or those named (names, aliases or Keras class names)."""
    cases = all_cases()
    if not names:
        return cases
    wanted = {jaxloss.get(n.strip()).name for n in names.split(",") if n.strip()}
    return [c for c in cases if c.loss in wanted]


# ----------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------


def parse_size(text: str) -> int:
    """``"1e4"``, ``"30000"`` or ``"8192x1024"`` to a number of elements."""
    text = text.strip().lower()
    try:
        if "x" in text:
            return math.prod(int(part) for part in text.split("x"))
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes: {text!r} is not a number of elements or RxC") from None
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"--sizes: {text!r} must be a positive whole number of elements")
    return int(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Jitted value-and-gradient of every loss against optax, Keras 3, plain autodiff, "
        "PyTorch and the stream floor, interleaved round by round.",
    )
    parser.add_argument("--platform", choices=["cpu", "gpu", "tpu"], default=None, help="default: jax's default")
    parser.add_argument(
        "--sizes",
        default=None,
        help=f"elements or RxC, comma-separated (default {DEFAULT_SIZES}; the full sweep: {FULL_SIZES})",
    )
    parser.add_argument("--losses", default=None, help="comma-separated loss names or aliases (default: all)")
    parser.add_argument(
        "--dtype",
        action="append",
        default=None,
        help="float32, bfloat16, float16 (repeatable or comma-separated; default float32,bfloat16)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"sizes {QUICK_SIZES}, float32, 3 rounds, short rounds (about a minute)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, --quick 3)")
    parser.add_argument(
        "--round-time",
        type=float,
        default=None,
        help="seconds the slowest implementation runs per round (default 0.02, --quick 0.004)",
    )
    parser.add_argument(
        "--peers",
        default=",".join(DEFAULT_PEERS),
        help=f"comma-separated subset of {','.join(PEERS)} (default {','.join(DEFAULT_PEERS)}; closed_form times "
        "the public loss plus analytic_grad, a diagnostic of the custom rules)",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds: no new case starts after this, and the ones left are listed as skipped (default: none)",
    )
    parser.add_argument("--out", default="results/bench", help="results folder (default results/bench)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.sizes = [parse_size(s) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)).split(",")]
    default_dtypes = "float32" if args.quick else ",".join(DTYPES)
    dtypes = [d.strip() for group in (args.dtype or [default_dtypes]) for d in group.split(",") if d.strip()]
    for d in dtypes:
        if d not in AGREEMENT:
            parser.error(f"--dtype: unknown dtype {d!r}; choose from {', '.join(AGREEMENT)}")
    args.dtype = dtypes
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.round_time = args.round_time if args.round_time is not None else (0.004 if args.quick else 0.02)
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(args.peers) - set(PEERS))
    if unknown:
        parser.error(f"--peers: unknown {unknown}; choose from {', '.join(PEERS)}")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if args.losses:
        try:
            select_cases(args.losses)
        except ValueError as err:
            parser.error(f"--losses: {err}")
    return args


# ----------------------------------------------------------------------------
# Optional peers (imported lazily: none is a dependency of jaxloss)
# ----------------------------------------------------------------------------


def load_keras() -> tuple[Any, str | None]:
    """Keras 3 on the JAX backend, or ``(None, reason)``."""
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError as err:
        return None, f"Keras peers skipped: keras is not importable ({err}); pip install 'keras>=3'"
    backend = keras.backend.backend()
    if backend != "jax":
        return None, f"Keras peers skipped: Keras runs on the {backend!r} backend; set KERAS_BACKEND=jax"
    return keras, None


def load_torch() -> tuple[Any, str | None]:
    try:
        import torch
    except ImportError:
        return None, "PyTorch peers skipped: torch is not installed"
    return torch, None


def load_plotting() -> tuple[Any, str | None]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "plot skipped: matplotlib is not installed (pip install matplotlib)"
    return plt, None


class Progress:
    """tqdm when it is installed, else a plain bar on stderr."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.perf_counter()
        try:
            from tqdm import tqdm

            self.bar: Any = tqdm(total=total, file=sys.stderr, unit="case", dynamic_ncols=True, leave=True)
        except ImportError:
            self.bar = None

    def step(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(label[:48])
            return
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(
            f"\r[{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total} {elapsed:6.1f}s {label[:48]:<48}"
        )
        sys.stderr.flush()

    def advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self.step("done")
            sys.stderr.write("\n")


# ----------------------------------------------------------------------------
# Compiled implementations
# ----------------------------------------------------------------------------


def _memory(compiled: Any) -> dict[str, int] | None:
    try:
        stats = compiled.memory_analysis()
    except Exception:  # backends without the analysis
        return None
    if stats is None:
        return None
    fields = {
        "temp_bytes": "temp_size_in_bytes",
        "peak_bytes": "peak_memory_in_bytes",
        "argument_bytes": "argument_size_in_bytes",
        "output_bytes": "output_size_in_bytes",
        "generated_code_bytes": "generated_code_size_in_bytes",
    }
    return {key: int(getattr(stats, attr)) for key, attr in fields.items() if hasattr(stats, attr)}


def _cost(compiled: Any) -> dict[str, float] | None:
    try:
        cost = compiled.cost_analysis()
    except Exception:
        return None
    if isinstance(cost, list):  # older jax: one dict per computation
        cost = cost[0] if cost else None
    if not cost:
        return None
    keys = {"bytes_accessed": "bytes accessed", "flops": "flops", "transcendentals": "transcendentals"}
    return {key: float(cost[name]) for key, name in keys.items() if name in cost}


_METADATA = re.compile(r",? metadata=\{[^}]*\}")
_NAME = re.compile(r"%[\w.\-]+")
_PARAMETER = re.compile(r"([(,]\s*)[\w.\-]+: ")  # "(a.1: f32[4,8], ..." in computation signatures
# The module's name and its table of Python source locations (FileNames, StackFrames, ...).
_SOURCE_INFO = re.compile(r"^(HloModule |FileNames|FunctionNames|FileLocations|StackFrames|\d+ )")


def program_fingerprint(hlo_text: str) -> str:
    """A hash of an optimized HLO module that ignores names, metadata and the module's name.

    Two implementations with equal fingerprints run the same XLA program: their
    time ratio is noise by construction.
    """
    body = [line for line in hlo_text.splitlines() if not _SOURCE_INFO.match(line)]
    text = _METADATA.sub("", "\n".join(body))
    names: dict[str, str] = {}
    text = _NAME.sub(lambda m: names.setdefault(m.group(0), f"%v{len(names)}"), text)
    text = _PARAMETER.sub(r"\1_: ", text)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Impl:
    """One compiled implementation: ``run()`` makes one blocking call."""

    def __init__(self, name: str, call: str):
        self.name, self.call = name, call
        self.run: Callable[[], Any] = lambda: None
        self.compile_s: float | None = None
        self.memory: dict[str, int] | None = None
        self.cost: dict[str, float] | None = None
        self.first: Any = None
        self.first_s = math.inf
        self.fingerprint: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "call": self.call,
            "compile_s": self.compile_s,
            "memory": self.memory,
            "cost": self.cost,
            "program": self.fingerprint,
            "first_call_s": self.first_s,
        }


# The floor depends only on shape and dtype: compiled once, shared by every loss.
_FLOOR_CACHE: dict[Any, tuple[Any, float, Any, Any, Any]] = {}


def jax_impl(name: str, call: str, fn: Callable[..., Any], args: tuple[Any, ...], cache_key: Any = None) -> Impl:
    impl = Impl(name, call)
    if cache_key is not None and cache_key in _FLOOR_CACHE:
        compiled, impl.compile_s, impl.memory, impl.cost, impl.fingerprint = _FLOOR_CACHE[cache_key]
    else:
        start = time.perf_counter()
        compiled = jax.jit(fn).lower(*args).compile()
        impl.compile_s = time.perf_counter() - start
        impl.memory, impl.cost = _memory(compiled), _cost(compiled)
        try:
            text = compiled.as_text()
            impl.fingerprint = program_fingerprint(text) if text else None
        except Exception:  # as_text is best effort on some backends
            impl.fingerprint = None
        if cache_key is not None:
            _FLOOR_CACHE[cache_key] = (compiled, impl.compile_s, impl.memory, impl.cost, impl.fingerprint)

    def run():
        return jax.block_until_ready(compiled(*args))

    impl.run = run
    start = time.perf_counter()
    impl.first = run()
    impl.first_s = time.perf_counter() - start
    return impl


def torch_impl(
    torch: Any, peer: Any, options: dict[str, Any], host: tuple[np.ndarray, np.ndarray], device: str
) -> Impl:
    """The PyTorch peer's mean and ``backward()``, float32 (int64 labels), on ``device``."""
    import torch.nn.functional as F

    y_true, y_pred = host
    integer = np.issubdtype(y_true.dtype, np.integer)
    t = torch.from_numpy(y_true.astype(np.int64) if integer else y_true.astype(np.float32)).to(device)
    p0 = torch.from_numpy(y_pred.astype(np.float32)).to(device)
    impl = Impl("torch", f"torch {torch.__version__} ({device}, float32): {peer.text}, mean, backward()")

    def run():
        p = p0.detach().requires_grad_(True)
        loss = peer.fn(torch, F, t, p, **options).mean()
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return loss.detach(), p.grad

    impl.run = run
    start = time.perf_counter()
    value, grad = run()
    impl.first_s = time.perf_counter() - start
    impl.first = (value.cpu().numpy(), grad.cpu().numpy())
    return impl


def value_and_grad(loss: Callable[..., Any]) -> Callable[..., Any]:
    def run(y_true, y_pred):
        return jax.value_and_grad(lambda p: loss(y_true, p))(y_pred)

    return run


def public_loss(case: Case) -> Callable[..., Any]:
    fn, opts = case.spec.function, case.options
    return lambda y_true, y_pred: fn(y_true, y_pred, **opts)


def closed_form(case: Case) -> Callable[..., Any]:
    """The public loss and its hand-written gradient (``jaxloss.analytic_grad``), in one program."""
    fn, opts = case.spec.function, case.options
    grad = jaxloss.analytic_grad(case.loss, **opts)
    return lambda y_true, y_pred: (fn(y_true, y_pred, **opts), grad(y_true, y_pred))


def plain_loss(case: Case) -> Callable[..., Any]:
    """The loss from its per-sample formula and the shared reduction, no custom rule.

    Options are normalized and split as the public path does under a caller's jit, so
    the two programs differ by the rule alone.
    """
    spec = case.spec
    static, numeric = spec.split(spec.check_options(case.options))
    opts = {**dict(static), **numeric}
    return lambda y_true, y_pred: spec.plain_forward("sum_over_batch_size", y_true, y_pred, None, opts)


def optax_loss(peer: Any, options: dict[str, Any]) -> Callable[..., Any]:
    return lambda y_true, y_pred: jnp.mean(peer.fn(y_true, y_pred, **options))


def keras_options(case: Case) -> dict[str, Any]:
    spec = case.spec
    opts = case.options if spec.keras_options is None else spec.keras_options(case.all_options)
    return {k: np.asarray(v).tolist() if hasattr(v, "shape") else v for k, v in opts.items()}


def build_impls(
    case: Case,
    arrays: dict[str, Any],
    host: tuple[np.ndarray, np.ndarray],
    wanted: list[str],
    keras: Any,
    torch: Any,
    platform_name: str,
) -> tuple[list[Impl], dict[str, str]]:
    spec = case.spec
    t, p = arrays["y_true"], arrays["y_pred"]
    # (name, call, the function to jit) for every jax implementation; made in the loop below,
    # so that one failing to build or compile is reported and the others still run.
    jax_makers: list[tuple[str, str, Callable[[], Callable[..., Any]]]] = [
        ("jaxloss", f"jax.value_and_grad(jaxloss.{case.loss})", lambda: value_and_grad(public_loss(case))),
    ]
    if "closed_form" in wanted:
        jax_makers.append(("closed_form", f"jaxloss.{case.loss} + analytic_grad", lambda: closed_form(case)))
    if "autodiff" in wanted and spec.custom_jvp:
        # Without a custom rule, jax.grad of the public loss *is* autodiff of the plain formula.
        call = "jax.value_and_grad(plain per-sample formula)"
        jax_makers.append(("autodiff", call, lambda: value_and_grad(plain_loss(case))))
    optax_peer = case.peer("optax")
    if "optax" in wanted and optax_peer is not None:
        call = f"optax.losses.{optax_peer.text}, mean"
        jax_makers.append(("optax", call, lambda: value_and_grad(optax_loss(optax_peer, case.all_options))))
    if "keras" in wanted and keras is not None and spec.keras_class is not None:
        kopts = keras_options(case)
        call = f"keras.losses.{spec.keras_class}({', '.join(f'{k}={v!r}' for k, v in kopts.items())})"
        jax_makers.append(("keras", call, lambda: value_and_grad(getattr(keras.losses, spec.keras_class)(**kopts))))

    impls, errors = [], {}

    def attempt(name: str, make: Callable[[], Impl]) -> None:
        try:
            impls.append(make())
        except Exception as err:  # a failing peer is reported, not fatal
            errors[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"

    for name, call, build in jax_makers:
        attempt(name, lambda: jax_impl(name, call, build(), (t, p)))
    torch_peer = case.peer("torch")
    if "torch" in wanted and torch is not None and torch_peer is not None:
        device = "cuda" if platform_name == "gpu" and torch.cuda.is_available() else "cpu"
        attempt("torch", lambda: torch_impl(torch, torch_peer, case.all_options, host, device))
    if "floor" in wanted:
        key = (p.shape, str(p.dtype), str(p.device))
        attempt("floor", lambda: jax_impl("floor", "y_pred - y_true", _floor, (arrays["floor_true"], p), cache_key=key))
    return impls, errors


def _floor_input(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normals of ``shape`` (rows repeated beyond :data:`MAX_DRAWN` elements, as the inputs)."""
    size = math.prod(shape)
    if size <= MAX_DRAWN or len(shape) < 2:
        return rng.standard_normal(shape, dtype=np.float32)
    rows = max(1, MAX_DRAWN // (size // shape[0]))
    return _repeat_rows(rng.standard_normal((rows, *shape[1:]), dtype=np.float32), shape[0])


def _floor(y_true, y_pred):
    return y_pred - y_true


# ----------------------------------------------------------------------------
# Agreement and timing
# ----------------------------------------------------------------------------


def agreement(ours: Any, theirs: Any, dtype: str) -> tuple[bool, float, float]:
    """Whether a peer computes the same value and gradient (relative max errors)."""
    v0, g0 = (np.asarray(x, np.float64) for x in ours)
    v1, g1 = (np.asarray(x, np.float64) for x in theirs)
    if g0.shape != g1.shape:
        return False, math.inf, math.inf
    value_err = float(np.max(np.abs(v1 - v0)) / max(float(np.max(np.abs(v0))), 1e-12))
    grad_err = float(np.max(np.abs(g1 - g0)) / max(float(np.max(np.abs(g0))), 1e-30)) if g0.size else 0.0
    tol = AGREEMENT[dtype]
    ok = bool(np.isfinite(value_err) and np.isfinite(grad_err) and value_err <= tol and grad_err <= tol)
    return ok, value_err, grad_err


def _calls_per_round(impls: list[Impl], round_time: float) -> int:
    # Not from the first call, which can carry one-time costs (thread pools, fresh pages);
    # the best of up to three, so that one preempted call does not shrink every round.
    slowest = 0.0
    for impl in impls:
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            impl.run()
            best = min(best, time.perf_counter() - start)
            if best >= round_time:
                break
        slowest = max(slowest, best)
    return max(1, min(200, math.ceil(round_time / max(slowest, 1e-7))))


def measure(impls: list[Impl], rounds: int, round_time: float) -> tuple[dict[str, list[float]], int]:
    """Seconds per call of each implementation in each round.

    A round makes ``calls`` passes over the implementations (in an order that
    rotates from round to round), timing every call on its own, and keeps each
    one's fastest call: on a shared machine, load only ever adds time, and
    alternating call by call exposes every implementation to the same load.
    """
    calls = _calls_per_round(impls, round_time)
    times: dict[str, list[float]] = {impl.name: [] for impl in impls}
    clock = time.perf_counter
    for r in range(rounds):
        shift = r % len(impls)
        order = impls[shift:] + impls[:shift]
        best = dict.fromkeys(times, math.inf)
        for _ in range(calls):
            for impl in order:
                start = clock()
                impl.run()
                elapsed = clock() - start
                if elapsed < best[impl.name]:
                    best[impl.name] = elapsed
        for name, value in best.items():
            times[name].append(value)
    return times, calls


def median_ratio(ours: list[float], theirs: list[float]) -> float:
    """Median over rounds of ours / theirs (rounds paired: noise common to a round cancels)."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def _to_device(x: np.ndarray, dtype: str, device: Any) -> jax.Array:
    if np.issubdtype(x.dtype, np.integer):
        return jax.device_put(jnp.asarray(x), device)
    return jax.device_put(jnp.asarray(x, dtype=dtype), device)


def bench_group(
    case: Case,
    dtype: str,
    host: tuple[np.ndarray, np.ndarray],
    floor_true: np.ndarray,
    args: argparse.Namespace,
    device: Any,
    keras: Any,
    torch: Any,
    check: bool,
) -> dict[str, Any]:
    start = time.perf_counter()
    arrays = {
        "y_true": _to_device(host[0], dtype, device),
        "y_pred": _to_device(host[1], dtype, device),
        "floor_true": _to_device(floor_true, dtype, device),
    }
    impls, errors = build_impls(case, arrays, host, args.peers, keras, torch, device.platform)
    row: dict[str, Any] = {
        "loss": case.loss,
        "label": case.label,
        "options": {k: _jsonable(v) for k, v in case.options.items()},
        "dtype": dtype,
        "shape": list(host[1].shape),
        "elements": int(host[1].size),
        "family": case.family,
        "crossentropy": case.crossentropy,
        "impls": {},
        "ratios": {},
        "errors": errors,
        # peers that would compile to jaxloss's own program (no custom rule): not timed
        "same_as_jaxloss": ["autodiff"] if "autodiff" in args.peers and not case.spec.custom_jvp else [],
    }
    if not impls or impls[0].name != "jaxloss":
        return row
    ours = impls[0]
    for impl in impls:
        entry = impl.record()
        if check and impl.name not in ("jaxloss", "floor"):
            ok, value_err, grad_err = agreement(ours.first, impl.first, dtype)
            entry |= {"agrees": ok, "value_rel_err": value_err, "grad_rel_err": grad_err}
        row["impls"][impl.name] = entry
    for impl in impls:  # the first outputs are no longer needed: free them before timing
        impl.first = None
    times, calls = measure(impls, args.rounds, args.round_time)
    for impl in impls:
        entry = row["impls"][impl.name]
        entry["times_s"] = times[impl.name]
        entry["median_s"] = statistics.median(times[impl.name])
        entry["calls_per_round"] = calls
        entry["ns_per_element"] = 1e9 * entry["median_s"] / row["elements"]
    for impl in impls[1:]:
        row["ratios"][impl.name] = median_ratio(times["jaxloss"], times[impl.name])
    # Peers that XLA compiled to jaxloss's very program: their ratio is noise by construction.
    row["identical_program"] = [
        impl.name for impl in impls[1:] if impl.fingerprint is not None and impl.fingerprint == ours.fingerprint
    ]
    row["wall_s"] = time.perf_counter() - start
    return row


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, (np.ndarray, np.generic, jax.Array)):
        return np.asarray(v).tolist()
    return v


# ----------------------------------------------------------------------------
# Sparse crossentropy memory check (compile only)
# ----------------------------------------------------------------------------


def sparse_memory_check(device: Any) -> dict[str, Any]:
    """Temp memory and bytes accessed of value-and-grad at N=4096, V=32768 (nothing is allocated).

    On CPU this is the form that keeps ``exp(z - m)``; on a GPU or TPU the jaxloss entry
    is the form that recomputes it.
    """
    n, v = SPARSE_CHECK
    name = "sparse_categorical_crossentropy"
    case = next((c for c in all_cases() if c.loss == name), None)
    if case is None:
        return {"skipped": f"{name} is not registered"}
    sharding = jax.sharding.SingleDeviceSharding(device)
    labels = jax.ShapeDtypeStruct((n,), jnp.int32, sharding=sharding)
    logits = jax.ShapeDtypeStruct((n, v), jnp.float32, sharding=sharding)
    logits_bytes = n * v * 4
    out: dict[str, Any] = {"N": n, "V": v, "logits_bytes": logits_bytes, "platform": device.platform, "impls": {}}
    candidates = {"jaxloss": value_and_grad(public_loss(case)), "autodiff": value_and_grad(plain_loss(case))}
    optax_peer = case.peer("optax")
    if optax_peer is not None:
        candidates["optax"] = value_and_grad(optax_loss(optax_peer, case.all_options))
    for impl, f in candidates.items():
        try:
            compiled = jax.jit(f).lower(labels, logits).compile()
        except Exception as err:
            out["impls"][impl] = {"error": f"{type(err).__name__}: {err}"[:200]}
            continue
        memory, cost = _memory(compiled) or {}, _cost(compiled) or {}
        out["impls"][impl] = {
            "temp_bytes": memory.get("temp_bytes"),
            "bytes_accessed": cost.get("bytes_accessed"),
            "bytes_over_logits": cost["bytes_accessed"] / logits_bytes if "bytes_accessed" in cost else None,
        }
    if optax_peer is not None and "error" not in out["impls"]["optax"]:
        out["impls"]["optax"]["call"] = f"optax.losses.{optax_peer.text}"
    return out


# ----------------------------------------------------------------------------
# Targets (float32, 8192 x 1024, CPU)
# ----------------------------------------------------------------------------

FLOOR_LIMIT = {POLYNOMIAL: 3.0, TRANSCENDENTAL: 5.0}


def evaluate_targets(rows: list[dict[str, Any]], sparse: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each target that the measured rows can decide, with its ratio."""
    out = []
    for row in rows:
        if row["dtype"] != "float32" or row["elements"] != TARGET_ELEMENTS or not row["ratios"]:
            continue
        r = row["ratios"]
        checks = []
        if "optax" in r:
            checks.append(("optax", "<= optax", 1.0))
        if "keras" in r:
            crossentropy = row["crossentropy"]
            checks.append(
                ("keras", "2x faster than keras" if crossentropy else "<= keras", 0.5 if crossentropy else 1.0)
            )
        if "floor" in r and row["family"] in FLOOR_LIMIT:
            checks.append(("floor", f"vs floor ({row['family']})", FLOOR_LIMIT[row["family"]]))
        for peer, what, limit in checks:
            # The same XLA program as the peer is "never slower" by construction (not for 2x).
            same = peer in row.get("identical_program", ()) and limit == 1.0
            out.append(
                {
                    "loss": row["loss"],
                    "target": what,
                    "ratio": r[peer],
                    "limit": limit,
                    "same_program": same,
                    "met": r[peer] <= limit or same,
                }
            )
    if sparse and "impls" in sparse and "jaxloss" in sparse["impls"]:
        ours = sparse["impls"]["jaxloss"]
        if ours.get("temp_bytes") is not None:
            mib = ours["temp_bytes"] / 2**20
            out.append(
                {
                    "loss": "sparse_categorical_crossentropy",
                    "target": "temp MiB at 4096x32768",
                    "ratio": mib,
                    "limit": 1.0,
                    "met": mib <= 1.0,
                }
            )
        over = ours.get("bytes_over_logits")
        if over is not None:
            out.append(
                {
                    "loss": "sparse_categorical_crossentropy",
                    "target": "bytes / logits bytes",
                    "ratio": over,
                    "limit": 5.0,
                    # At the precision shown: the O(N) vectors (labels, maxima, sums) add 4e-4.
                    "met": round(over, 2) <= 5.0,
                }
            )
    return out


# ----------------------------------------------------------------------------
# Environment
# ----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: Any, keras: Any, torch: Any, argv: list[str]) -> dict[str, Any]:
    import optax

    malloc = {k: os.environ.get(k) for k in MALLOC_ENV}
    return {
        "jaxloss": jaxloss.__version__,
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "optax": optax.__version__,
        "keras": getattr(keras, "__version__", None),
        "torch": getattr(torch, "__version__", None),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": device.platform,
        "device": str(device),
        "device_kind": getattr(device, "device_kind", device.platform),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "glibc": os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "malloc_env": malloc,
        "malloc_env_set": settings_in_effect(),
        "command": "python -m benchmarks " + " ".join(argv),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


# ----------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------


def _fmt_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} us"


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _shape(row: dict[str, Any]) -> str:
    return "x".join(map(str, row["shape"]))


LABEL = 39


def _fmt_compile(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds >= 1.0 else f"{seconds * 1e3:.0f} ms"


def table(rows: list[dict[str, Any]], peers: Iterable[str]) -> str:
    """The terminal table: jaxloss's time, ratios to each peer, compile, temp memory, bytes."""
    peers = [
        p for p in PEERS if p in peers and any(p in r["ratios"] or p in r.get("same_as_jaxloss", ()) for r in rows)
    ]
    head = f"{'loss':<{LABEL}} {'dtype':<8} {'shape':>12} {'jaxloss':>9} {'ns/el':>6} "
    head += " ".join(f"{p[:8]:>8} " for p in peers)
    head += f" {'compile':>7} {'temp':>9} {'B/pred':>6}"
    lines = [head, "-" * len(head)]
    for row in rows:
        start = f"{row['label'][:LABEL]:<{LABEL}} {row['dtype']:<8} {_shape(row):>12}"
        ours = row["impls"].get("jaxloss")
        if ours is None or "median_s" not in ours:
            lines.append(f"{start}  failed: {row['errors'].get('jaxloss', '?')}")
            continue
        cells = []
        for p in peers:
            if p in row["ratios"]:
                flag = "=" if p in row.get("identical_program", ()) else " "
                flag = flag if row["impls"][p].get("agrees", True) else "!"
                cells.append(f"{row['ratios'][p]:>8.2f}{flag}")
            else:
                cells.append(f"{'same' if p in row.get('same_as_jaxloss', ()) else '-':>8} ")
        memory, cost = ours.get("memory") or {}, ours.get("cost") or {}
        pred_bytes = row["elements"] * np.dtype(jnp.dtype(row["dtype"])).itemsize
        per_pred = f"{cost['bytes_accessed'] / pred_bytes:.1f}" if "bytes_accessed" in cost else "-"
        lines.append(
            f"{start} {_fmt_time(ours['median_s']):>9} {ours['ns_per_element']:>6.2f} "
            + " ".join(cells)
            + f" {_fmt_compile(ours['compile_s']):>7} {_fmt_bytes(memory.get('temp_bytes')):>9} {per_pred:>6}"
        )
    return "\n".join(lines)


def targets_table(targets: list[dict[str, Any]]) -> str:
    if not targets:
        return "targets: not evaluated (they need float32 at 8192x1024: --sizes 8192x1024 --dtype float32)"
    lines = [f"{'loss':<{LABEL}} {'target':<26} {'measured':>9} {'limit':>6}  verdict"]
    for t in targets:
        verdict = "met (same XLA program)" if t.get("same_program") else ("met" if t["met"] else "MISSED")
        lines.append(f"{t['loss'][:LABEL]:<{LABEL}} {t['target']:<26} {t['ratio']:>9.2f} {t['limit']:>6.2f}  {verdict}")
    met = sum(t["met"] for t in targets)
    lines.append(f"{met} of {len(targets)} targets met")
    return "\n".join(lines)


def sparse_text(sparse: dict[str, Any]) -> str:
    if "skipped" in sparse:
        return f"sparse CE memory check: skipped ({sparse['skipped']})"
    lines = [
        f"sparse CE from logits, value and grad, N={sparse['N']} V={sparse['V']} (compile only; logits {_fmt_bytes(sparse['logits_bytes'])}):"
    ]
    for name, r in sparse["impls"].items():
        if "error" in r:
            lines.append(f"  {name:<9} failed: {r['error']}")
            continue
        over = r["bytes_over_logits"]
        lines.append(
            f"  {name:<9} temp {_fmt_bytes(r['temp_bytes']):>10}   bytes accessed {_fmt_bytes(r['bytes_accessed']):>10} "
            f"= {over:.2f} x logits"
            if over is not None
            else f"  {name:<9} temp {_fmt_bytes(r['temp_bytes'])}"
        )
    return "\n".join(lines)


def header(meta: dict[str, Any], args: argparse.Namespace) -> str:
    malloc = " ".join(f"{k}={v}" for k, v in meta["malloc_env"].items() if v is not None) or "(none)"
    if meta["malloc_env_set"]:
        note = f"malloc: {malloc}, set by the bench for its own process (fresh output buffers reuse freed heap pages instead of page-faulting new mmaps)"
    else:
        note = f"malloc: NOT set ({malloc}): outputs may page-fault; run `python -m benchmarks` as a command to set {', '.join(MALLOC_ENV)}"
    return "\n".join(
        [
            f"jaxloss {meta['jaxloss']} | jax {meta['jax']} jaxlib {meta['jaxlib']} optax {meta['optax']} "
            f"keras {meta['keras'] or '-'} torch {meta['torch'] or '-'} | python {meta['python']}",
            f"device: {meta['device']} ({meta['device_kind']}; {meta['cpu']}, {meta['cpu_affinity'] or meta['cpu_count']} cores) "
            f"| XLA_FLAGS={meta['xla_flags'] or '(unset)'}",
            note,
            f"{args.rounds} rounds; in each, implementations alternate call by call for >= {args.round_time * 1e3:g} ms "
            "and keep their fastest call. Columns after ns/el: median over rounds of jaxloss / peer (< 1: jaxloss "
            "faster); '=': the peer compiled to jaxloss's very XLA program (its ratio is noise); 'same': the same by "
            "construction, not timed; '!': the peer's value or gradient differs from jaxloss's. compile, temp (XLA memory_analysis) and B/pred (cost_analysis bytes accessed / "
            "bytes of y_pred; the floor's is 3.0) are jaxloss's.",
        ]
    )


def plot(rows: list[dict[str, Any]], path: Path, plt: Any, meta: dict[str, Any]) -> None:
    labels = list(dict.fromkeys(r["label"] for r in rows if r["impls"]))
    if not labels:
        return
    cols = min(4, len(labels))
    nrows = math.ceil(len(labels) / cols)
    height = 3.2 * nrows + 1.0  # inches, with room for the title and the legend
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, height), squeeze=False)
    colors = dict(zip(IMPLS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    styles = {"float32": "-", "bfloat16": "--", "float16": ":"}
    for ax, label in zip(axes.flat, labels, strict=False):
        for impl in IMPLS:
            for dtype in styles:
                pts = sorted(
                    (r["elements"], r["impls"][impl]["ns_per_element"])
                    for r in rows
                    if r["label"] == label and r["dtype"] == dtype and "ns_per_element" in r["impls"].get(impl, {})
                )
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, styles[dtype], marker="o", ms=3, color=colors[impl], label=f"{impl} {dtype}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("elements", fontsize=8)
        ax.set_ylabel("ns / element", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(labels) :]:
        ax.axis("off")
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(name, handle)
    order = sorted(legend, key=lambda n: (IMPLS.index(n.split()[0]), n))
    handles, names = [legend[n] for n in order], order
    fig.legend(handles, names, loc="lower center", ncol=min(7, len(names)), fontsize=8, frameon=False)
    fig.suptitle(
        f"value and gradient, time per element ({meta['device_kind']}, jax {meta['jax']}; solid float32, dashed bfloat16)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.7 / height, 1, 1 - 0.4 / height))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    device = jax.devices(args.platform)[0] if args.platform else jax.devices()[0]
    notes = []
    keras, reason = load_keras() if "keras" in args.peers else (None, None)
    if reason:
        notes.append(reason)
    torch, reason = load_torch() if "torch" in args.peers else (None, None)
    if reason:
        notes.append(reason)
    meta = environment(device, keras, torch, argv)
    cases = select_cases(args.losses)
    # Size-major: under a time budget, every loss is measured at the small sizes first.
    groups = [(c, n) for n in args.sizes for c in cases if c.max_elements is None or n <= c.max_elements]
    skipped = [
        {"loss": c.loss, "elements": n, "reason": f"above this case's max_elements={c.max_elements}"}
        for c in cases
        for n in args.sizes
        if c.max_elements is not None and n > c.max_elements
    ]
    check_sparse = any(c.loss == "sparse_categorical_crossentropy" for c in cases)
    progress = Progress(len(groups) * len(args.dtype) + int(check_sparse))
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    smallest = {c.loss: min((n for cc, n in groups if cc is c), default=None) for c in cases}

    def over_budget() -> bool:
        return args.time_budget is not None and time.perf_counter() - start > args.time_budget

    for case, n in groups:
        if over_budget():
            skipped.append({"loss": case.loss, "elements": n, "reason": f"time budget of {args.time_budget:g} s spent"})
            continue
        rng = np.random.default_rng(args.seed)
        try:
            host = case.draw(rng, n)
        except Exception as err:  # a domain that cannot draw this shape is reported, not fatal
            skipped.append({"loss": case.loss, "elements": n, "reason": f"drawing inputs failed: {err!r}"[:300]})
            continue
        floor_true = _floor_input(rng, host[1].shape)
        for dtype in args.dtype:
            progress.step(f"{case.loss} {dtype} {n:.0e}")
            rows.append(
                bench_group(case, dtype, host, floor_true, args, device, keras, torch, check=n == smallest[case.loss])
            )
            progress.advance()
        del host, floor_true
    sparse = None
    if check_sparse and not over_budget():
        progress.step("sparse CE memory check")
        sparse = sparse_memory_check(device)
        progress.advance()
    elif check_sparse:
        sparse = {"skipped": f"time budget of {args.time_budget:g} s spent"}
    progress.close()
    order = [c.loss for c in cases]
    rows.sort(key=lambda r: (r["dtype"], order.index(r["loss"]), r["elements"]))
    meta |= {
        "duration_s": time.perf_counter() - start,
        "load_average_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "mmapped_after": mmapped_blocks(),
        "rounds": args.rounds,
        "round_time_s": args.round_time,
        "sizes": args.sizes,
        "dtypes": args.dtype,
        "peers": args.peers,
        "quick": args.quick,
        "time_budget_s": args.time_budget,
    }
    targets = evaluate_targets(rows, sparse) if device.platform == "cpu" else []
    return {
        "schema": SCHEMA,
        "meta": meta,
        "rows": rows,
        "skipped": skipped,
        "sparse_memory": sparse,
        "targets": targets,
        "notes": notes,
    }


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    meta = result["meta"]
    parts = [header(meta, args), "", table(result["rows"], args.peers)]
    if result["sparse_memory"] is not None:
        parts += ["", sparse_text(result["sparse_memory"])]
    if meta["platform"] == "cpu":
        parts += ["", "targets (float32, 8192x1024, CPU):", targets_table(result["targets"])]
    errors = [(r["label"], r["dtype"], name, msg) for r in result["rows"] for name, msg in r["errors"].items()]
    if errors:
        parts += ["", "failed implementations:"] + [f"  {lbl} {dt} {name}: {msg}" for lbl, dt, name, msg in errors]
    budget = [s for s in result["skipped"] if "max_elements" not in s["reason"]]
    if budget:
        parts += ["", "not measured:"] + [f"  {s['loss']} {s['elements']:.0e}: {s['reason']}" for s in budget]
    mm = meta.get("mmapped_after")
    tail = f"{meta['duration_s']:.0f} s"
    if meta["load_average_start"] and meta["load_average_end"]:
        tail += f"; load average {meta['load_average_start'][0]:.1f} -> {meta['load_average_end'][0]:.1f}"
    if mm is not None:
        tail += f"; live mmapped blocks at the end: {mm['blocks']} ({_fmt_bytes(mm['bytes'])})"
    parts += ["", *result["notes"], tail]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = run(args, argv)
    text = report(result, args)
    print(text)
    (out / "bench.txt").write_text(text + "\n")
    with open(out / "bench.json", "w") as fh:
        json.dump(result, fh, indent=1, default=_jsonable)
    written = [out / "bench.json", out / "bench.txt"]
    if not args.no_plot:
        plt, reason = load_plotting()
        if plt is None:
            print(reason)
        else:
            plot(result["rows"], out / "bench.png", plt, result["meta"])
            written.append(out / "bench.png")
    print("wrote " + ", ".join(map(str, written)))
    return 0
