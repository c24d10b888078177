"""--steps: the derivation ends at dL = tr(Gᵀ dX) with the gradient, and every
differential it shows is an identity that holds numerically."""

import numpy as np
import pytest

from matdiff.api import Result
from matdiff.steps import derivation


@pytest.mark.parametrize("expr,wrt,vars,final", [
    ("-tr(Y^T log softmax(XW+b))", "W", {"Y": "onehot"}, "dL = tr((Xᵀ(softmax(XW + 𝟙bᵀ) − Y))ᵀ dW)"),
    ("Z = X W + b; L = -tr(Y^T log softmax(Z))", "W", {"Y": "onehot"}, "dL = tr((Xᵀ(softmax(Z) − Y))ᵀ dW)"),
    ("x^T A x", "x", {}, "dL = ((A + Aᵀ)x)ᵀ dx"),
    ("sum(σ(X W))", "W", {}, None),
])
def test_derivation_ends_with_the_gradient(expr, wrt, vars, final):
    r = Result(expr, [wrt], vars)
    lines = derivation(r, "L").splitlines()
    assert lines[-1] == f"∂L/∂{wrt} = {r.gradient(wrt).text}"
    dl = [ln for ln in lines if ln.startswith("dL = ")]
    assert len(dl) >= 2
    if final is not None:
        assert dl[-1] == final
    # the last differential names only d of the variable
    assert f"d{wrt}" in dl[-1]


def test_steps_differential_is_numerically_the_gradient():
    # dL = tr(Gᵀ dW) with the printed G: compare with a directional difference.
    r = Result("sum(σ(X W))", ["W"], {})
    ns = r.numpy_namespace()
    rng = np.random.default_rng(3)
    X, W, dW = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    G = ns["gradient"](X=X, W=W)
    h = 1e-6
    fd = (ns["value"](X=X, W=W + h * dW) - ns["value"](X=X, W=W - h * dW)) / (2 * h)
    assert np.trace(G.T @ dW) == pytest.approx(fd, rel=1e-6)


def test_each_step_names_its_identity():
    """Every expansion step cites the identity of its op's rule entry."""
    from matdiff.ops import registry
    r = Result("-tr(Y^T log softmax(XW+b))", ["W"], {"Y": "onehot"})
    steps = [ln for ln in derivation(r, "L").splitlines() if ln.startswith("    d")]
    assert steps and all(ln.rstrip().endswith("]") for ln in steps)
    cited = {ln.rsplit("[", 1)[1].rstrip("]") for ln in steps}
    names = {e.get("name") for e in registry.ops().values()}
    assert cited <= names | {"constant factor"}
    assert {"product rule", "log-softmax's differential", "sum rule"} <= cited
