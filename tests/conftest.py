"""Test configuration: Keras on the JAX backend, strict rank promotion, platforms."""

import collections
import math
import os
import random
import re
import zlib

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import pytest
from hypothesis import HealthCheck, settings

from .xla_flags import use_fast_compile_flags

use_fast_compile_flags()  # before any test starts a backend: XLA reads XLA_FLAGS then, not at import


jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "ci", max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser):
    parser.addoption(
        "--platform",
        action="store",
        default=None,
        help="run device-parametrized tests on this platform only (cpu, gpu, tpu); default: every platform present",
    )
    parser.addoption("--run-slow", action="store_true", default=False, help="run the exhaustive sweeps marked slow")
    parser.addoption(
        "--slow-sample",
        type=float,
        default=None,
        metavar="FRACTION",
        help="run only a seeded FRACTION of the tests the CI sample deselects, to estimate how long --run-slow takes",
    )


# Large parametrized grids: CI runs a seeded sample of each (at least SAMPLE_MIN
# instances, and SAMPLE_FRACTION of them) and deselects the rest at collection time,
# with the tests marked slow; `--run-slow` (make test-all) runs all.
SAMPLE_MIN = 1
SAMPLE_FRACTION = 0.05
# Every registered loss stays in the sample: each is named by the parameters of at least
# LOSS_MIN kept instances of the grids (topped up from what the sampler left out).
LOSS_MIN = 3
# Minutes `make test-all` (everything, --run-slow) takes on CI's 2 cores, shown in the
# summary line of a sampled run: make test's minutes plus the minutes of a seeded 5% of
# what it deselects (`pytest -n 2 --slow-sample 0.05`) times 20. Re-measure after large changes.
TEST_ALL_MINUTES: float | None = 40

# Registered here as well as in pyproject.toml, so a copy of tests/ run against an
# installed wheel (tools/test_range.py) behaves as the source tree does.
MARKERS = (
    "slow: exhaustive sweeps, run with `make test-all` (CI runs a seeded sample)",
    "presampled: a grid that samples itself per case; the generic CI sampler leaves it alone",
    "unsampled: a parametrized test whose instances all run in CI (each is a page or case of its own)",
)
FILTERWARNINGS = (
    "error",
    "ignore::DeprecationWarning:keras.*",
    "ignore::DeprecationWarning:tensorflow.*",
    "ignore:Explicitly requested dtype int64 requested in ShapeDtypeStruct:UserWarning",
)


# What the CI sampler kept: {"kept": n, "total": n, "slow": n}, or None with --run-slow.
_SAMPLE = pytest.StashKey[dict | None]()


def pytest_configure(config):
    registered = {line.split(":", 1)[0] for line in config.getini("markers")}
    for marker in MARKERS:
        if marker.split(":", 1)[0] not in registered:
            config.addinivalue_line("markers", marker)
    if config.inipath is None:
        for rule in FILTERWARNINGS:
            config.addinivalue_line("filterwarnings", rule)
    config.stash[_SAMPLE] = None


def _sampled_out(items):
    groups = collections.defaultdict(list)
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and hasattr(item, "callspec")
            and not {"slow", "presampled", "unsampled"} & set(item.keywords)
        ):
            groups[(item.module.__name__, item.originalname)].append(item)
    out = set()
    for key, group in groups.items():
        keep = max(SAMPLE_MIN, math.ceil(SAMPLE_FRACTION * len(group)))
        if len(group) > keep:
            rng = random.Random(zlib.crc32("::".join(key).encode()))
            kept = set(rng.sample(range(len(group)), keep))
            out.update(id(item) for i, item in enumerate(group) if i not in kept)
    _cover_every_loss(items, out)
    return out


def losses_named(item, losses: set[str]) -> set[str]:
    """The losses a parametrized test's id names (``cpu-ctc[]empty-sum`` names ctc)."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return set()
    return set(re.split(r"[^A-Za-z0-9_]+", callspec.id)) & losses


def _cover_every_loss(items, out: set[int]) -> None:
    """Move sampled-out instances back in until each loss is named by LOSS_MIN kept ones."""
    from jaxloss._core import REGISTRY

    losses = set(REGISTRY)
    named = {id(item): losses_named(item, losses) for item in items if "slow" not in item.keywords}
    count = collections.Counter(name for item_id, names in named.items() if item_id not in out for name in names)
    spare = sorted((item for item in items if id(item) in out), key=lambda item: zlib.crc32(item.nodeid.encode()))
    for name in sorted(losses):
        for item in spare:
            if count[name] >= LOSS_MIN:
                break
            if id(item) in out and name in named[id(item)]:
                out.discard(id(item))
                count.update(named[id(item)])


@pytest.hookimpl(trylast=True)  # after -k and -m, so the counts are of what runs
def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    sampled_out = _sampled_out(items)
    kept, dropped, slow = [], [], 0
    for item in items:
        if "slow" in item.keywords:
            dropped.append(item)
            slow += 1
        elif id(item) in sampled_out:
            dropped.append(item)
        else:
            kept.append(item)
    fraction = config.getoption("--slow-sample")
    if fraction is not None:
        # The estimate's sample: a seeded share of what the CI sample leaves out, nothing else.
        rng = random.Random(zlib.crc32(b"slow-sample"))
        chosen = set(rng.sample(range(len(dropped)), round(fraction * len(dropped))))
        kept, dropped = (
            [item for i, item in enumerate(dropped) if i in chosen],
            kept + [item for i, item in enumerate(dropped) if i not in chosen],
        )
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
        return
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    config.stash[_SAMPLE] = {"kept": len(kept), "total": len(kept) + len(dropped), "slow": slow}


def pytest_sessionfinish(session):
    # Under pytest-xdist each worker collects; its counts go to the controller, which prints.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["jaxloss_sample"] = session.config.stash.get(_SAMPLE, None)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    sample = getattr(node, "workeroutput", {}).get("jaxloss_sample")
    if sample is not None:
        node.config.stash[_SAMPLE] = sample


def pytest_terminal_summary(terminalreporter, config):
    sample = config.stash.get(_SAMPLE, None)
    if not sample or sample["kept"] == sample["total"]:
        return
    duration = "not yet timed" if TEST_ALL_MINUTES is None else f"about {TEST_ALL_MINUTES:.0f} minutes on 2 cores"
    terminalreporter.write_line(
        f"sampled: ran {sample['kept']} of {sample['total']} collected tests (a seeded "
        f"{SAMPLE_FRACTION:.0%} of each large grid, at least {SAMPLE_MIN} per grid and {LOSS_MIN} per loss; "
        f"{sample['slow']} marked slow); run everything with `make test-all` (pytest --run-slow, {duration})"
    )


def _platforms(config):
    present = sorted({d.platform for d in jax.devices()} | {"cpu"})
    chosen = config.getoption("--platform")
    if chosen:
        if chosen not in present:
            raise pytest.UsageError(f"--platform {chosen}: not present (have {present})")
        return [chosen]
    return present


def pytest_generate_tests(metafunc):
    if "platform" in metafunc.fixturenames:
        metafunc.parametrize("platform", _platforms(metafunc.config))


@pytest.fixture
def device(platform):
    return jax.devices(platform)[0]
