"""--format torch: the generated kernels against torch.autograd.grad (float64,
every dimension different): of the mission example and the seeds' networks
written by hand in PyTorch, and of the reference interpreter run on tensors
(tests/torch_xp.py) for one program per rule-table entry. The
autograd.Function under gradcheck, float32, tensors on another device."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from matdiff import reference  # noqa: E402
from matdiff.api import Result  # noqa: E402
from matdiff.higher import Higher  # noqa: E402
from matdiff.numpy_emit import compile_module  # noqa: E402

import backend_cases as cases  # noqa: E402
import torch_xp  # noqa: E402

reference._SPECIAL["torch_xp"] = torch_xp.special  # erf for the reference on tensors
F64 = torch.float64


def close(a, b, rtol=1e-9, atol=1e-11):
    def arr(x):
        return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    np.testing.assert_allclose(arr(a), arr(b), rtol=rtol, atol=atol)


def tensors(a, dtype=F64, grad=()):
    return {k: torch.tensor(v, dtype=dtype, requires_grad=k in grad) for k, v in a.items()}


def module(src, wrt, vars):
    r = Result(src, wrt, vars)
    return r, compile_module(r.source("torch"))


def grads(f, arrays, wrt):
    """torch.autograd.grad of f(**arrays) with respect to each name in wrt."""
    xs = {k: (v.detach().clone().requires_grad_(k in wrt)) for k, v in arrays.items()}
    v = f(**xs)
    return v.detach(), torch.autograd.grad(v, [xs[w] for w in wrt])


# The networks written directly in PyTorch.
def mission(X, W, b, Y):
    return -(Y * torch.log_softmax(X @ W + b, dim=1)).sum()


def two_layer(act):
    def f(X, W1, b1, W2, b2, Y, λ):
        Z2 = act(X @ W1 + b1) @ W2 + b2
        return (-(Y * torch.log_softmax(Z2, dim=1)).sum() / X.shape[0]
                + λ * ((W1 ** 2).sum() + (W2 ** 2).sum()))
    return f


def k_layer(W1, x, b1, W2, b2, W3, b3, y):
    h2 = torch.sigmoid(W2 @ torch.sigmoid(W1 @ x + b1) + b2)
    return -y @ torch.log_softmax(W3 @ h2 + b3, dim=0)


def tanh_mlp(W1, x, b1, W2, b2, t):
    z2 = torch.tanh(W2 @ torch.tanh(W1 @ x + b1) + b2)
    return 0.5 * ((z2 - t) ** 2).sum()


HAND = {"mission": mission, "two-layer σ": two_layer(torch.sigmoid),
        "two-layer relu": two_layer(torch.relu), "k-layer σ": k_layer, "tanh MLP": tanh_mlp}


@pytest.mark.parametrize("name", list(cases.NETWORKS))
def test_networks_against_autograd_of_the_hand_written_function(name):
    src, wrt, vars = cases.NETWORKS[name]
    a, _ = cases.data(src, vars, seed=1)
    arrays = tensors(a)
    _, ns = module(src, wrt, vars)
    v, g = ns["value_and_gradient"](**arrays)
    want_v, want_g = grads(HAND[name], arrays, wrt)
    close(v, want_v)
    for got, want in zip(g, want_g):
        close(got, want)
    # the autograd.Function: backward is the closed form, and gradcheck passes
    args = [arrays[k].detach().clone().requires_grad_(k in wrt) for k in arrays]
    out = ns["function"](*args)
    close(out, want_v)
    got = torch.autograd.grad(out, [dict(zip(arrays, args))[w] for w in wrt])
    for a1, a2 in zip(got, want_g):
        close(a1, a2)
    assert torch.autograd.gradcheck(ns["Function"].apply, tuple(args))


RULES = cases.rule_programs()


@pytest.mark.parametrize("case", RULES, ids=[c[0] for c in RULES])
def test_every_rule_against_autograd_of_the_reference(case):
    ident, src, wrt, vars = case
    assert src is not None, f"{ident}: no spelling reaches this op: add one to SPELLINGS"
    a, _ = cases.data(src, vars, seed=2)
    arrays = tensors(a)
    _, ns = module(src, wrt, vars)

    def ref(**kw):
        return reference.evaluate(src, kw, vars=vars, xp=torch_xp)
    want_v, want_g = grads(ref, arrays, wrt)
    v, g = ns["value_and_gradient"](**arrays)
    g = (g,) if len(wrt) == 1 else g
    assert isinstance(v, torch.Tensor) and v.dtype == F64
    close(v, want_v)
    for name, got, want in zip(wrt, g, want_g):
        assert tuple(got.shape) == tuple(want.shape), name
        close(got, want, rtol=1e-8, atol=1e-10)
    # the Function inside a model: autograd through it equals autograd of the reference
    args = [arrays[k].detach().clone().requires_grad_(k in wrt) for k in arrays]
    got = torch.autograd.grad(torch.tanh(ns["function"](*args)) * 2.0,
                              [dict(zip(arrays, args))[w] for w in wrt])
    _, want = grads(lambda **kw: torch.tanh(ref(**kw)) * 2.0, arrays, wrt)
    for a1, a2 in zip(got, want):
        close(a1, a2, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("ident", [c[0] for c in RULES if c[1] is not None])
def test_gradcheck_on_rule_programs(ident):
    _, src, wrt, vars = next(c for c in RULES if c[0] == ident)
    a, _ = cases.data(src, vars, seed=3)
    _, ns = module(src, wrt, vars)
    args = tuple(torch.tensor(v, dtype=F64, requires_grad=k in wrt) for k, v in a.items())
    assert torch.autograd.gradcheck(ns["Function"].apply, args)


def test_inputs_outside_wrt_get_torch_autodiff():
    # derived for W only: X and b still get their gradients (autograd of value)
    src, _, vars = cases.MISSION
    a, _ = cases.data(src, vars, seed=4)
    _, ns = module(src, ["W"], vars)
    need = ("X", "W", "b")
    args = tuple(torch.tensor(v, dtype=F64, requires_grad=k in need) for k, v in a.items())
    assert torch.autograd.gradcheck(ns["Function"].apply, args)
    _, want = grads(mission, tensors(a), list(need))
    got = torch.autograd.grad(ns["function"](*args), [x for x in args if x.requires_grad])
    for a1, a2 in zip(got, want):
        close(a1, a2)


def test_forward_computes_the_gradients_only_when_one_is_needed():
    src, wrt, vars = cases.MISSION
    a, _ = cases.data(src, vars, seed=5)
    r, ns = module(src, wrt, vars)
    calls = []

    def counted(**kw):
        calls.append(1)
        return ns["value_and_gradient"](**kw)
    names = tuple(a)
    Function, function = ns["_autograd_function"](ns["value"], counted, names,
                                                  tuple(names.index(w) for w in wrt))
    with torch.no_grad():
        out = function(**tensors(a))
    close(out, mission(**tensors(a)))
    assert not out.requires_grad and calls == []
    out = function(**tensors(a, grad=("W",)))
    assert calls == [1]
    out.backward()


def test_float32_in_float32_out():
    src, wrt, vars = cases.TWO_LAYER
    a, _ = cases.data(src, vars, seed=6)
    _, ns = module(src, wrt, vars)
    v, g = ns["value_and_gradient"](**tensors(a, torch.float32))
    assert v.dtype == torch.float32 and all(x.dtype == torch.float32 for x in g)
    v64, g64 = ns["value_and_gradient"](**tensors(a))
    close(v, v64, rtol=1e-4, atol=1e-5)
    for x, y in zip(g, g64):
        close(x, y, rtol=1e-3, atol=1e-4)


DEVICE_CASES = [cases.MISSION, cases.TWO_LAYER, cases.K_LAYER,
                ("sum(X) + tr(S) + 2 a^T x + sqrt(2 / pi) sum(gelu_tanh(x))", ["X", "S", "x"],
                 {"S": "matrix(n,n)"})]


@pytest.mark.parametrize("case", DEVICE_CASES, ids=[c[0][:30] for c in DEVICE_CASES])
def test_nothing_is_created_on_the_cpu_or_in_float64(case):
    # On the `meta` device any tensor made without the inputs' device (a CPU
    # constant) fails to combine; the dtype of every result is the inputs'.
    src, wrt, vars = case
    a, _ = cases.data(src, vars, seed=7)
    _, ns = module(src, wrt, vars)
    meta = {k: torch.tensor(v, dtype=torch.float32).to("meta") for k, v in a.items()}
    v, g = ns["value_and_gradient"](**meta)
    for x in (v, *g):
        assert x.device.type == "meta" and x.dtype == torch.float32
    assert "float64" not in Result(src, wrt, vars).source("torch")


HESSIANS = [
    ("sum(log(1 + exp(-y .* (X w))))", "w", "hessian",
     lambda y, X, w: torch.nn.functional.softplus(-y * (X @ w)).sum()),
    ("x^T A x + sum(exp(x))", "x", "hessian", lambda x, A: x @ A @ x + torch.exp(x).sum()),
    ("tr(X^T A X)", "X", "hessian", lambda X, A: torch.trace(X.T @ A @ X)),
    ("tanh(W2 tanh(W1 x))", "x", "jacobian",
     lambda W2, W1, x: torch.tanh(W2 @ torch.tanh(W1 @ x))),
]


@pytest.mark.parametrize("case", HESSIANS, ids=[c[0] for c in HESSIANS])
def test_hessians_and_jacobians_against_torch(case):
    expr, wrt, kind, f = case
    ns = compile_module(Higher(expr, [wrt], {}, kind).source("torch"))
    a, _ = cases.data(expr, {}, seed=8)
    arrays = tensors(a)
    got = ns[kind](**arrays)
    x = arrays[wrt]
    fx = lambda x: f(**{**arrays, wrt: x})  # noqa: E731
    F = torch.autograd.functional
    want = F.hessian(fx, x) if kind == "hessian" else F.jacobian(fx, x)
    if x.dim() == 2:  # vec order (column stacking) on both sides
        n = x.numel()
        want = want.permute(1, 0, 3, 2).reshape(n, n)
    close(got, want, rtol=1e-8, atol=1e-10)
