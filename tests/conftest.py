"""Test configuration: Keras on the JAX backend, strict rank promotion, platforms."""

import collections
import math
import os
import random
import zlib

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import pytest
from hypothesis import HealthCheck, settings

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


# Large parametrized grids: CI runs a seeded sample of each (at least SAMPLE_MIN
# instances, and SAMPLE_FRACTION of them); `--run-slow` (make test-all) runs all.
SAMPLE_MIN = 4
SAMPLE_FRACTION = 0.12


def _sampled_out(items):
    groups = collections.defaultdict(list)
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and hasattr(item, "callspec")
            and not {"slow", "presampled"} & set(item.keywords)
        ):
            groups[(item.module.__name__, item.originalname)].append(item)
    out = set()
    for key, group in groups.items():
        keep = max(SAMPLE_MIN, math.ceil(SAMPLE_FRACTION * len(group)))
        if len(group) > keep:
            rng = random.Random(zlib.crc32("::".join(key).encode()))
            kept = set(rng.sample(range(len(group)), keep))
            out.update(id(item) for i, item in enumerate(group) if i not in kept)
    return out


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="exhaustive sweep: run with --run-slow (make test-all)")
    sampled_out = _sampled_out(items)
    for item in items:
        if "slow" in item.keywords or id(item) in sampled_out:
            item.add_marker(skip)


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
