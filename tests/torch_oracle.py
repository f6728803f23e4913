"""PyTorch as an oracle where it is installed (make test-range's newest Python has no CPU
build of it): the tests that need it skip with the reason, everything else runs."""

from __future__ import annotations

import pytest

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def require_torch():
    """The torch module; skips the calling test when it is absent (for shared helpers)."""
    if torch is None:
        pytest.skip("torch is not installed")
    return torch
