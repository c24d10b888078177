"""A 1×1 result is a scalar wherever a scalar fits (issue 18): products of
1×1 quotients and sums as factors and divisors, checked numerically."""

import numpy as np
import pytest

from matdiff.api import Result

from numeric import assert_close, numeric_gradient

RNG = np.random.default_rng(18)
m, n = 5, 4  # Z is m×n, y and w1 have n entries, z has m

CASES = {
    "divided": ("(y^T w1) ((Z y ./ z)^T z) / 2", lambda Z, y, w1, z: (y @ w1) * ((Z @ y / z) @ z) / 2),
    "undivided": ("(y^T w1) ((Z y ./ z)^T z)", lambda Z, y, w1, z: (y @ w1) * ((Z @ y / z) @ z)),
    "times-half": ("(y^T w1) ((Z y ./ z)^T z) * 0.5",
                   lambda Z, y, w1, z: (y @ w1) * ((Z @ y / z) @ z) * 0.5),
    "by-a-quotient": ("(y^T w1) ((Z y ./ z)^T z) / (w1^T w1)",
                      lambda Z, y, w1, z: (y @ w1) * ((Z @ y / z) @ z) / (w1 @ w1)),
    "one-factor": ("((Z y ./ z)^T z) / 2", lambda Z, y, w1, z: ((Z @ y / z) @ z) / 2),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_by_one_factor_scales(case):
    src, f = CASES[case]
    a = dict(Z=RNG.standard_normal((m, n)), y=RNG.standard_normal(n),
             w1=RNG.standard_normal(n), z=RNG.uniform(0.5, 1.5, m))
    wrt = ["Z", "y"] if "w1" not in src else ["Z", "y", "w1"]
    r = Result(src, wrt)
    value, grads = r.numpy_namespace()["value_and_gradient"](**{k: v for k, v in a.items()
                                                                 if k in r.problem.variables})

    def fa(**kw):
        return f(**{**a, **kw})
    assert value == pytest.approx(fa(), rel=1e-9)
    for name, g in zip(wrt, grads):
        assert_close(g, numeric_gradient(fa, a, name), f"∂/∂{name} of {src}")
