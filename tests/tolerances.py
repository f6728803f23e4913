"""Tolerances by dtype, in one place."""

import numpy as np

# float32: tight, as the guide asks. Values accumulate a few ulps through sums.
F32 = {"rtol": 2e-5, "atol": 1e-6}
# float64 finite differences (check_grads) and closed form in float64.
F64 = {"rtol": 1e-7, "atol": 1e-9}
# bfloat16/float16 inputs are computed in float32: only the rounding of the input differs.
HALF = {"rtol": 1e-2, "atol": 1e-2}


def assert_close(actual, expected, tol=F32, err_msg=""):
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64), err_msg=err_msg, **tol)
