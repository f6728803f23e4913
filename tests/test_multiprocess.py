"""The losses across processes: two JAX processes on this machine, four host CPU devices each.

Both run tests/multiprocess_worker.py: ``jax.distributed.initialize`` with the
coordinator on a free loopback port and CPU collectives over gloo, then, on the
global 2 x 4 mesh, the jitted value and gradient of

- ``sparse_categorical_crossentropy`` and ``huber`` with their rows sharded over all
  eight devices (plain ``jax.jit`` of committed global arrays);
- the vocabulary-parallel ``linear_cross_entropy`` (``axis_name="model"``: the weight
  split along the vocabulary over the model axis, tokens over the data axis), in both
  weight layouts, once with the model axis inside each process and once across the two,
  so its ``pmax``/``psum`` of per-token statistics cross the process boundary.

Each equals the same call in this single process (one device, no mesh) to 1e-5. The
normal suite runs two of the eight vocab-parallel cases ((d, V) summed with the model
axis inside each process, (V, d) per token across the two); ``make test-all`` runs all.
The two workers are bounded in time and killed, both, on a timeout or a failure.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from . import multiprocess_worker as worker
from .xla_flags import CHOSEN

WORKER = pathlib.Path(worker.__file__).resolve()
# Its tests share one module fixture: one worker runs them all (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("multiprocess")
ROOT = WORKER.parents[1]
TIMEOUT_S = 240
RTOL = 1e-5


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_workers(out: pathlib.Path, cases: str) -> list[dict[str, np.ndarray]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    env.update(
        # The suite's compile flags (tests/xla_flags.py), if any, and the host devices.
        XLA_FLAGS=f"{os.environ.get(CHOSEN, '')} --xla_force_host_platform_device_count={worker.LOCAL_DEVICES}".strip(),
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    )
    port = _free_port()
    procs, logs = [], []
    try:
        for i in range(worker.NUM_PROCESSES):
            log = open(out / f"worker_{i}.log", "wb")
            logs.append(log)
            cmd = [sys.executable, str(WORKER), str(i), str(port), str(out), cases]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + TIMEOUT_S
        for proc in procs:
            proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the two processes did not finish within {TIMEOUT_S} s:\n{_tails(out)}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
    codes = [p.returncode for p in procs]
    assert codes == [0] * worker.NUM_PROCESSES, f"exit codes {codes}:\n{_tails(out)}"
    results = []
    for i in range(worker.NUM_PROCESSES):
        with np.load(out / f"results_{i}.npz") as f:
            results.append(dict(f))
    return results


def _tails(out: pathlib.Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(out.glob("*.log")))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return _run_workers(tmp_path_factory.mktemp("multiprocess"), "short")


@pytest.fixture(scope="module")
def expected():
    return worker.single_process(worker.make_data(), "short")


def _rel_err(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def _check(results, expected, prefix: str, reference: str | None = None) -> None:
    reference = reference or prefix
    keys = sorted(k[len(prefix) :] for k in results[0] if k.startswith(prefix))
    assert keys, prefix
    for process, got in enumerate(results):
        for key in keys:
            want = expected[reference + key]
            assert got[prefix + key].shape == want.shape, (process, key)
            assert _rel_err(got[prefix + key], want) <= RTOL, (process, key, _rel_err(got[prefix + key], want))


def test_two_processes_of_four_devices(results):
    within, across = results[0]["mesh/model_within"], results[0]["mesh/model_across"]
    np.testing.assert_array_equal(within, [[0, 0, 0, 0], [1, 1, 1, 1]])  # model axis inside a process
    np.testing.assert_array_equal(across, [[0, 0, 1, 1], [0, 0, 1, 1]])  # model axis across the two
    np.testing.assert_array_equal(results[1]["mesh/model_across"], across)


@pytest.mark.parametrize("loss", ["crossentropy", "huber"])
def test_batch_sharded_value_and_grad(results, expected, loss):
    _check(results, expected, f"{loss}/")


def _check_lm_head(results, expected, cases):
    for layout, reduction, mesh in worker.LCE_CASES[cases]:
        _check(results, expected, f"lm_head/{layout}/{reduction}/{mesh}/", f"lm_head/{layout}/{reduction}/single/")


def test_vocab_parallel_linear_cross_entropy(results, expected):
    """(d, V) weights, model axis inside each process, summed; (V, d) across the two, per token."""
    _check_lm_head(results, expected, "short")


@pytest.mark.slow
def test_vocab_parallel_linear_cross_entropy_every_case(tmp_path):
    """Both layouts, both reductions, both meshes."""
    _check_lm_head(_run_workers(tmp_path, "full"), worker.single_process(worker.make_data(), "full"), "full")


def test_the_comparison_can_fail(results, expected):
    """The gradients are not trivially equal: the vocab-parallel weight gradient differs between reductions."""
    a = expected["lm_head/dv/sum/single/weight"]
    b = results[0]["lm_head/vd/none/model_across/weight"].T
    assert _rel_err(b, a) > 100 * RTOL
