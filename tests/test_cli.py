"""The command line, end to end (SPEC §2 and the Errors paragraph of §1).

Every behaviour is exercised two ways:

* ``subprocess``: the installed ``matdiff`` script next to ``sys.executable``
  (falling back to ``python -m matdiff.cli``), exactly as a user types it;
* ``inprocess``: click's ``CliRunner``. Successful runs go through
  ``CliRunner.invoke(matdiff.cli.cli, ...)``; bad input goes through the
  real entry point ``matdiff.cli.main`` inside ``CliRunner.isolation()``,
  because turning a ``MatdiffError`` into "message on stderr, exit 2" is
  ``main``'s job, not the click group's.
"""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest
from click.testing import CliRunner

import matdiff
from matdiff.cli import cli, main

from numeric import numeric_gradient

MISSION = "-tr(Y^T log softmax(XW+b))"
MISSION_W = "∂L/∂W = Xᵀ(softmax(XW + 𝟙bᵀ) − Y)"
MISSION_B = "∂L/∂b = (softmax(XW + 𝟙bᵀ) − Y)ᵀ𝟙"
PROGRAM = "Z = XW + b; L = -tr(Y^T log softmax(Z))"
PROGRAM_W = "∂L/∂W = Xᵀ(softmax(Z) − Y)"


# --------------------------------------------------------------------------
# runners

@dataclass
class Run:
    code: int
    out: str
    err: str


def _script():
    exe = os.path.join(os.path.dirname(sys.executable), "matdiff")
    if os.path.exists(exe) and os.access(exe, os.X_OK):
        return [exe]
    return [sys.executable, "-m", "matdiff.cli"]


def run_subprocess(args, input=None, cwd=None):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    p = subprocess.run(_script() + list(args), input=input, capture_output=True,
                       text=True, encoding="utf-8", env=env, cwd=cwd, timeout=120)
    return Run(p.returncode, p.stdout, p.stderr)


def run_clirunner(args, input=None, cwd=None):
    """Success paths: CliRunner.invoke on the click group."""
    res = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    err = res.stderr if res.stderr_bytes is not None else ""
    return Run(res.exit_code, res.stdout, err)


def run_main(args, input=None, cwd=None):
    """Any path: the real entry point matdiff.cli.main, isolated by CliRunner."""
    runner = CliRunner()
    with runner.isolation(input=input) as streams:
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        out = streams[0].getvalue().decode("utf-8")
        err = streams[1].getvalue().decode("utf-8", "backslashreplace") \
            if len(streams) > 1 and streams[1] is not None else ""
    return Run(code, out, err)


@pytest.fixture(params=["subprocess", "clirunner"])
def run(request):
    """Runs the CLI for a success path."""
    return {"subprocess": run_subprocess, "clirunner": run_clirunner}[request.param]


@pytest.fixture(params=["subprocess", "main"])
def run_err(request):
    """Runs the CLI for a bad-input path (needs main's error handling)."""
    return {"subprocess": run_subprocess, "main": run_main}[request.param]


def lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


# --------------------------------------------------------------------------
# the mission example, as typed

def test_mission_example_as_typed(run):
    r = run(["grad", MISSION, "--wrt", "W", "--var", "Y:onehot"])
    assert r.code == 0, r
    assert lines(r.out) == [MISSION_W]
    assert "Traceback" not in r.err


@pytest.mark.parametrize("args", [
    ["grad", "--wrt", "W", MISSION, "--var", "Y:onehot"],
    ["grad", "--wrt", "W", "--var", "Y:onehot", MISSION],
    ["grad", "--var", "Y:onehot", MISSION, "--wrt", "W"],
    ["grad", "--wrt=W", "--var=Y:onehot", MISSION],
    ["grad", MISSION, "--wrt", "W", "--var", "Y:onehot", "--format", "text"],
], ids=["wrt-first", "options-first", "var-first", "equals-options", "explicit-text"])
def test_mission_example_option_orders(run, args):
    r = run(args)
    assert r.code == 0, r
    assert lines(r.out) == [MISSION_W]


def test_leading_minus_expression_is_not_an_option(run):
    r = run(["grad", "-x^T x", "--wrt", "x"])
    assert r.code == 0, r
    assert lines(r.out) == ["∂L/∂x = −2x"]


def test_several_wrt_in_order(run):
    r = run(["grad", MISSION, "--wrt", "W", "--wrt", "b", "--var", "Y:onehot"])
    assert r.code == 0, r
    assert lines(r.out) == [MISSION_W, MISSION_B]
    r = run(["grad", MISSION, "--wrt", "b", "--wrt", "W", "--var", "Y:onehot"])
    assert r.code == 0, r
    assert lines(r.out) == [MISSION_B, MISSION_W]


def test_several_wrt_quadratic_form(run):
    r = run(["grad", "t x^T x", "--wrt", "t", "--wrt", "x", "--var", "t:scalar"])
    assert r.code == 0, r
    assert lines(r.out) == ["∂L/∂t = xᵀx", "∂L/∂x = 2tx"]


# --------------------------------------------------------------------------
# --var declarations

def test_var_onehot_changes_the_result(run):
    plain = run(["grad", MISSION, "--wrt", "W"])
    assert plain.code == 0, plain
    # without onehot the row sums of Y stay in the gradient
    assert lines(plain.out) != [MISSION_W]
    assert lines(plain.out)[0].startswith("∂L/∂W = ")


def test_var_keeps_a_name_whole(run):
    r = run(["grad", "tr(XW)", "--wrt", "XW", "--var", "XW:matrix"])
    assert r.code == 0, r
    assert lines(r.out) == ["∂L/∂XW = I"]


def test_var_symmetric(run):
    r = run(["grad", "x^T S x", "--wrt", "S", "--var", "S:symmetric"])
    assert r.code == 0, r
    assert lines(r.out) == ["∂L/∂S = xxᵀ"]


def test_var_dimensions_show_in_json(run):
    r = run(["grad", "||X W - Y||_F^2", "--wrt", "W", "--var", "X:matrix(N,D)",
             "--format", "json"])
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert doc["variables"]["X"] == {"kind": "matrix", "shape": ["N", "D"]}
    assert doc["variables"]["W"]["shape"][0] == "D"
    assert doc["gradients"]["W"]["shape"] == doc["variables"]["W"]["shape"]
    assert doc["gradients"]["W"]["text"] == "2Xᵀ(XW − Y)"


def test_var_numeric_dimensions(run):
    r = run(["grad", "tr(X)", "--wrt", "X", "--var", "X:matrix(3,3)"])
    assert r.code == 0, r
    assert lines(r.out) == ["∂L/∂X = I"]


# --------------------------------------------------------------------------
# formats

def test_format_latex(run):
    r = run(["grad", MISSION, "--wrt", "W", "--wrt", "b", "--var", "Y:onehot",
             "--format", "latex"])
    assert r.code == 0, r
    out = lines(r.out)
    assert len(out) == 2
    assert out[0].startswith(r"\frac{\partial L}{\partial W} = ")
    assert out[1].startswith(r"\frac{\partial L}{\partial b} = ")
    assert r"X^{\top}" in out[0] and "softmax" in out[0]
    assert "∂" not in r.out and "ᵀ" not in r.out


def test_format_json(run):
    r = run(["grad", MISSION, "--wrt", "W", "--wrt", "b", "--var", "Y:onehot",
             "--format", "json"])
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert set(doc) >= {"expression", "variables", "gradients"}
    assert doc["expression"] == MISSION
    assert set(doc["variables"]) == {"X", "Y", "W", "b"}
    assert doc["variables"]["Y"]["kind"] == "onehot"
    assert doc["variables"]["b"]["kind"] == "vector"
    assert len(doc["variables"]["b"]["shape"]) == 1
    assert len(doc["variables"]["W"]["shape"]) == 2
    assert list(doc["gradients"]) == ["W", "b"]
    for name in ("W", "b"):
        g = doc["gradients"][name]
        assert set(g) >= {"text", "latex", "shape"}
        assert g["shape"] == doc["variables"][name]["shape"]
    assert "∂L/∂W = " + doc["gradients"]["W"]["text"] == MISSION_W
    assert "∂L/∂b = " + doc["gradients"]["b"]["text"] == MISSION_B
    # same dimension names are shared: X is N×D, W is D×C, Y is N×C
    v = doc["variables"]
    assert v["X"]["shape"][1] == v["W"]["shape"][0]
    assert v["X"]["shape"][0] == v["Y"]["shape"][0]
    assert v["W"]["shape"][1] == v["Y"]["shape"][1] == v["b"]["shape"][0]


def test_json_matches_python_api(run):
    r = run(["grad", "x^T A x", "--wrt", "x", "--wrt", "A", "--format", "json"])
    assert r.code == 0, r
    doc = json.loads(r.out)
    api = matdiff.grad("x^T A x", wrt=["x", "A"])
    for name in ("x", "A"):
        assert doc["gradients"][name]["text"] == api[name].text
        assert doc["gradients"][name]["latex"] == api[name].latex


# numpy: the printed module, exec'd in a fresh namespace, against central
# differences of an independent NumPy implementation.

def _log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _onehot(rng, n, c):
    y = np.zeros((n, c))
    y[np.arange(n), rng.integers(c, size=n)] = 1.0
    return y


def _spd(rng, n):
    m = rng.standard_normal((n, n))
    return m @ m.T / n + np.eye(n)


# N, D, C, H, P, Q: all different
N, D, C, H, P, Q = 7, 3, 4, 5, 6, 2

NUMPY_CASES = {
    "mission": dict(
        expr=MISSION, wrt=["W", "b"], vars=["Y:onehot"],
        data=lambda rng: dict(Y=_onehot(rng, N, C), X=rng.standard_normal((N, D)),
                              W=rng.standard_normal((D, C)), b=rng.standard_normal(C)),
        f=lambda Y, X, W, b: -np.sum(Y * _log_softmax(X @ W + b))),
    "least-squares": dict(
        expr="||X W - Y||_F^2", wrt=["W"], vars=[],
        data=lambda rng: dict(X=rng.standard_normal((N, D)), W=rng.standard_normal((D, C)),
                              Y=rng.standard_normal((N, C))),
        f=lambda X, W, Y: np.sum((X @ W - Y) ** 2)),
    "quadratic-form": dict(
        expr="x^T A x", wrt=["x", "A"], vars=[],
        data=lambda rng: dict(x=rng.standard_normal(D), A=rng.standard_normal((D, D))),
        f=lambda x, A: x @ A @ x),
    "logistic": dict(
        expr="sum(log(1 + exp(-y .* (X w))))", wrt=["w"], vars=[],
        data=lambda rng: dict(y=np.sign(rng.standard_normal(N)), X=rng.standard_normal((N, D)),
                              w=rng.standard_normal(D)),
        f=lambda y, X, w: np.sum(np.log1p(np.exp(-y * (X @ w))))),
    "trace-AXB": dict(
        expr="tr(A X B)", wrt=["X", "A", "B"], vars=[],
        data=lambda rng: dict(A=rng.standard_normal((P, D)), X=rng.standard_normal((D, C)),
                              B=rng.standard_normal((C, P))),
        f=lambda A, X, B: np.trace(A @ X @ B)),
    "logdet": dict(
        expr="logdet(X) - tr(A X)", wrt=["X", "A"], vars=[],
        data=lambda rng: dict(X=_spd(rng, C), A=rng.standard_normal((C, C))),
        f=lambda X, A: np.linalg.slogdet(X)[1] - np.trace(A @ X)),
    "tanh-mlp": dict(
        expr="sum(tanh(X W1 + b1) W2)", wrt=["W1", "b1", "W2"], vars=[],
        data=lambda rng: dict(X=rng.standard_normal((N, D)), W1=rng.standard_normal((D, H)),
                              b1=rng.standard_normal(H), W2=rng.standard_normal((H, Q))),
        f=lambda X, W1, b1, W2: np.sum(np.tanh(X @ W1 + b1) @ W2)),
    "sigmoid-scalar": dict(
        expr="sum(σ(α X w))", wrt=["α", "w"], vars=[],
        data=lambda rng: dict(α=0.7, X=rng.standard_normal((N, D)), w=rng.standard_normal(D)),
        f=lambda α, X, w: np.sum(1 / (1 + np.exp(-α * (X @ w))))),
}


def _exec_module(source):
    ns = {}
    exec(compile(source, "<matdiff --format numpy>", "exec"), ns)  # our own output
    return ns


def _assert_close(got, want, what):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    err = float(np.max(np.abs(got - want))) / scale if want.size else 0.0
    assert err < 1e-5, f"{what}: relative error {err:.2e}\n{got}\n{want}"


@pytest.mark.parametrize("case", list(NUMPY_CASES), ids=list(NUMPY_CASES))
def test_format_numpy_module(run, case):
    c = NUMPY_CASES[case]
    args = ["grad", c["expr"], "--format", "numpy"]
    for w in c["wrt"]:
        args += ["--wrt", w]
    for v in c["vars"]:
        args += ["--var", v]
    r = run(args)
    assert r.code == 0, r
    ns = _exec_module(r.out)
    for fn in ("value", "gradient", "value_and_gradient"):
        assert callable(ns.get(fn)), f"the module defines no {fn}()"
    imported = {ln.split()[1].split(".")[0] for ln in r.out.splitlines()
                if ln.startswith(("import ", "from "))}
    assert imported <= {"numpy", "scipy"}, imported

    rng = np.random.default_rng(1234)
    arrays = c["data"](rng)
    value = ns["value"](**arrays)
    assert isinstance(value, float)
    assert value == pytest.approx(c["f"](**arrays), rel=1e-9, abs=1e-9)

    grads = ns["gradient"](**arrays)
    v2, grads2 = ns["value_and_gradient"](**arrays)
    assert v2 == pytest.approx(value, rel=1e-12, abs=1e-12)
    if len(c["wrt"]) == 1:
        assert not isinstance(grads, tuple)
        grads, grads2 = (grads,), (grads2,)
    else:
        assert isinstance(grads, tuple) and len(grads) == len(c["wrt"])
    for name, g, g2 in zip(c["wrt"], grads, grads2):
        want = numeric_gradient(c["f"], arrays, name)
        _assert_close(g, want, f"∂/∂{name}")
        _assert_close(g2, g, f"value_and_gradient ∂/∂{name}")
        if np.isscalar(arrays[name]):
            assert np.ndim(g) == 0
        else:
            assert np.shape(g) == arrays[name].shape


def test_format_numpy_reads_dimensions_from_arrays(run):
    r = run(["grad", "||X W - Y||_F^2", "--wrt", "W", "--var", "X:matrix(N,D)",
             "--format", "numpy"])
    assert r.code == 0, r
    ns = _exec_module(r.out)
    rng = np.random.default_rng(0)
    for n, d, c in [(5, 3, 2), (9, 4, 6)]:
        X, W, Y = rng.standard_normal((n, d)), rng.standard_normal((d, c)), rng.standard_normal((n, c))
        _assert_close(ns["gradient"](X=X, W=W, Y=Y), 2 * X.T @ (X @ W - Y), "∂/∂W")


def test_format_numpy_module_is_import_safe(run):
    """The module only defines things: running it has no output and no arrays."""
    r = run(["grad", "x^T A x", "--wrt", "x", "--format", "numpy"])
    assert r.code == 0, r
    ns = _exec_module(r.out)
    assert ns["gradient"](x=np.ones(3), A=np.eye(3)).shape == (3,)
    assert not any(isinstance(v, np.ndarray) for v in ns.values())


# --------------------------------------------------------------------------
# input: stdin, --file

def test_stdin_dash(run):
    r = run(["grad", "-", "--wrt", "W", "--var", "Y:onehot"], input=PROGRAM)
    assert r.code == 0, r
    assert lines(r.out) == [PROGRAM_W]


def test_stdin_dash_expression_with_leading_minus(run):
    r = run(["grad", "-", "--wrt", "W", "--var", "Y:onehot"], input=MISSION + "\n")
    assert r.code == 0, r
    assert lines(r.out) == [MISSION_W]


def test_stdin_multiline_program(run):
    src = "Z = XW + b\nL = -tr(Y^T log softmax(Z))\n"
    r = run(["grad", "-", "--wrt", "W", "--wrt", "Z", "--var", "Y:onehot"], input=src)
    assert r.code == 0, r
    out = lines(r.out)
    assert out[0] == PROGRAM_W
    assert out[1] == "∂L/∂Z = softmax(Z) − Y"


def test_file(run, tmp_path):
    path = tmp_path / "net.md"
    path.write_text(textwrap.dedent("""\
        Z = XW + b
        L = -tr(Y^T log softmax(Z))
        """), encoding="utf-8")
    r = run(["grad", "--file", str(path), "--wrt", "W", "--var", "Y:onehot"])
    assert r.code == 0, r
    assert lines(r.out) == [PROGRAM_W]


def test_file_with_numpy_format(run, tmp_path):
    path = tmp_path / "mission.txt"
    path.write_text(MISSION, encoding="utf-8")
    r = run(["grad", "--file", str(path), "--wrt", "W", "--var", "Y:onehot",
             "--format", "numpy"])
    assert r.code == 0, r
    assert "def value_and_gradient" in r.out


# --------------------------------------------------------------------------
# --help, --version

def test_help_shows_examples(run):
    r = run(["--help"])
    assert r.code == 0, r
    assert "Usage:" in r.out
    assert "grad" in r.out and "check" in r.out
    assert "Examples" in r.out
    assert "matdiff grad" in r.out
    assert MISSION in r.out


def test_help_short_option(run):
    r = run(["-h"])
    assert r.code == 0, r
    assert "Examples" in r.out


def test_version(run):
    r = run(["--version"])
    assert r.code == 0, r
    assert matdiff.__version__ in r.out
    assert "matdiff" in r.out


# --------------------------------------------------------------------------
# matdiff check

def test_check_success(run):
    r = run(["check", MISSION, "--wrt", "W", "--wrt", "b", "--var", "Y:onehot"])
    assert r.code == 0, r
    out = lines(r.out)
    assert len(out) == 2
    assert out[0].startswith("W:") and out[0].rstrip().endswith("ok")
    assert out[1].startswith("b:") and out[1].rstrip().endswith("ok")


@pytest.mark.parametrize("expr,wrt,vars_", [
    ("logdet(X) - tr(A X)", ["X"], []),
    ("x^T A x", ["x", "A"], []),
    ("sum(log(1 + exp(-y .* (X w))))", ["w"], []),
    ("tr(A X B)", ["X"], []),
])
def test_check_success_more(run, expr, wrt, vars_):
    args = ["check", expr]
    for w in wrt:
        args += ["--wrt", w]
    for v in vars_:
        args += ["--var", v]
    r = run(args)
    assert r.code == 0, r
    out = lines(r.out)
    assert [ln.split(":")[0] for ln in out] == wrt
    assert all(ln.rstrip().endswith("ok") for ln in out)


def test_check_mismatch_exits_nonzero(run):
    """An impossible tolerance makes the comparison fail: non-zero exit."""
    r = run(["check", "x^T A x", "--wrt", "x", "--tol", "1e-300"])
    assert r.code not in (0, 2), r
    assert "MISMATCH" in r.out
    assert "Traceback" not in r.err


# --------------------------------------------------------------------------
# bad input: exit 2, a message on stderr, no traceback, a caret at the source

BAD = {
    # kind: (args, [words the message must contain], has a source position)
    "syntax-unclosed": (["grad", "tr(A X", "--wrt", "X"], ["expected ')'"], True),
    "syntax-character": (["grad", "tr(A X) $", "--wrt", "X"], ["unexpected", "$"], True),
    "syntax-leading-minus": (["grad", "-tr(A X", "--wrt", "X"], ["expected ')'"], True),
    "unknown-function": (["grad", "sum(gelu2(X))", "--wrt", "X"],
                         ["unknown function 'gelu2'"], True),
    "shape-mismatch": (["grad", "tr(A B)", "--wrt", "A", "--var", "A:matrix(3,4)",
                        "--var", "B:matrix(5,3)"], ["shape", "3×4", "5×3"], True),
    "declared-names-differ": (["grad", "sum(XW)", "--wrt", "X", "--var", "X:matrix(N,D)",
                               "--var", "W:matrix(N,C)"],
                              ["XW needs D = N: X is N×D, W is N×C"], True),
    "shape-vectors": (["grad", "a^T b", "--wrt", "a", "--var", "a:vector(3)",
                       "--var", "b:vector(4)"], ["shape"], True),
    "shape-not-square": (["grad", "tr(X)", "--wrt", "X", "--var", "X:matrix(3,4)"],
                         ["square", "3×4"], True),
    "non-scalar": (["grad", "A X", "--wrt", "X"], ["not scalar"], False),
    "non-scalar-vector": (["grad", "x^T x", "--wrt", "x", "--var", "x:matrix"],
                          ["not scalar"], False),
    "wrt-not-in-expression": (["grad", "tr(A X)", "--wrt", "Z"],
                              ["'Z'", "not in the expression"], "--wrt Z"),
    "wrt-one-of-several-missing": (["grad", "x^T x", "--wrt", "x", "--wrt", "y"],
                                   ["'y'", "not in the expression"], "--wrt y"),
    "wrt-a-dimension": (["grad", "sum(X)/D", "--wrt", "D", "--var", "X:matrix(N,D)"],
                        ["'D' is a dimension"], "--wrt D"),
    "var-bad-kind": (["grad", "tr(A X)", "--wrt", "X", "--var", "A:banana"],
                     ["unknown kind 'banana'"], "--var A:banana"),
    "var-kind-typo": (["grad", "tr(A X)", "--wrt", "X", "--var", "A:matrx(N,N)"],
                      ["unknown kind 'matrx'", "did you mean 'matrix'"], "--var A:matrx(N,N)"),
    "var-unclosed-dims": (["grad", "tr(A X)", "--wrt", "X", "--var", "A:matrix(3"],
                          ["expected ')'"], "--var A:matrix(3"),
    "var-no-colon": (["grad", "tr(A X)", "--wrt", "X", "--var", "Amatrix"],
                     ["bad declaration", "NAME:KIND"], "--var Amatrix"),
    "var-bad-name": (["grad", "x^T x", "--wrt", "x", "--var", "1x:vector"],
                     ["bad variable name", "1x"], "--var 1x:vector"),
    "var-bad-dimension": (["grad", "tr(X)", "--wrt", "X", "--var", "X:matrix(3,-1)"],
                          ["bad dimension", "-1"], "--var X:matrix(3,-1)"),
    "var-three-dims": (["grad", "tr(X)", "--wrt", "X", "--var", "X:N×D×K"],
                       ["two dimensions"], "--var X:N×D×K"),
    "var-twice": (["grad", "tr(X)", "--wrt", "X", "--var", "X:N×N", "--var", "X:matrix(3,3)"],
                  ["declared twice"], "--var X:matrix(3,3)"),
    "var-too-many-dims": (["grad", "tr(X)", "--wrt", "X", "--var", "X:vector(3,4)"],
                          ["too many dimensions"], True),
    "empty-expression": (["grad", "", "--wrt", "x"], ["empty"], True),
    "blank-expression": (["grad", "  ", "--wrt", "x"], ["empty"], True),
    "too-deep": (["grad", "(" * 30000 + "x^T x" + ")" * 30000, "--wrt", "x"],
                 ["too deeply nested"], True),
    "check-syntax": (["check", "tr(A X", "--wrt", "X"], ["expected ')'"], True),
    "check-wrt-not-in-expression": (["check", "tr(A X)", "--wrt", "Q"],
                                    ["'Q'", "not in the expression"], "--wrt Q"),
}


@pytest.mark.parametrize("kind", list(BAD), ids=list(BAD))
def test_bad_input(run_err, kind):
    args, words, positioned = BAD[kind]
    r = run_err(args)
    assert r.code == 2, r
    assert "Traceback" not in r.err and "Traceback" not in r.out
    assert r.out == "", "errors go to stderr only"
    assert r.err.startswith("matdiff: error: "), r.err
    assert "internal error" not in r.err, r.err
    for w in words:
        assert w in r.err, f"{w!r} not in {r.err!r}"
    if isinstance(positioned, str):  # the option as typed, a caret under its bad part
        err_lines = r.err.splitlines()
        assert err_lines[-2] == "  " + positioned, r.err
        carets = err_lines[-1]
        assert carets.strip() and set(carets.strip()) == {"^"}, r.err
        assert len(carets) <= len(err_lines[-2]) + 1
        assert carets.index("^") > len(positioned.split()[0]) + 2, "the caret is on the value"
    elif positioned:
        assert "column" in r.err
        assert "^" in r.err
        # the caret line sits under the echoed source line
        err_lines = r.err.splitlines()
        caret_i = next(i for i, ln in enumerate(err_lines) if ln.strip().startswith("^"))
        assert caret_i > 0
        src_line, caret_line = err_lines[caret_i - 1], err_lines[caret_i]
        col = caret_line.index("^")
        assert col < len(src_line) + 1


def test_caret_points_at_the_offending_character(run_err):
    r = run_err(["grad", "tr(A X) $", "--wrt", "X"])
    assert r.code == 2
    err_lines = r.err.splitlines()
    src_line, caret_line = err_lines[-2], err_lines[-1]
    assert src_line[caret_line.index("^")] == "$"


def test_caret_points_at_the_product_in_a_shape_error(run_err):
    r = run_err(["grad", "tr(A B)", "--wrt", "A", "--var", "A:matrix(3,4)",
                 "--var", "B:matrix(5,3)"])
    assert r.code == 2
    err_lines = r.err.splitlines()
    src_line, caret_line = err_lines[-2], err_lines[-1]
    i = caret_line.index("^")
    # the caret sits between A and B (on the juxtaposition)
    assert src_line.strip().startswith("tr(A")
    assert src_line[:i].rstrip().endswith("A") and "B" in src_line[i:]


def test_caret_on_second_line_of_a_program(run_err):
    r = run_err(["grad", "-", "--wrt", "W"], input="Z = XW\nL = tr(Z $)\n")
    assert r.code == 2, r
    assert "line 2" in r.err
    assert "L = tr(Z $)" in r.err and "^" in r.err
    assert "Traceback" not in r.err


@pytest.mark.parametrize("args", [
    ["grad", "tr(X)"],                                   # no --wrt
    ["grad", "tr(X)", "--wrt", "X", "--format", "pdf"],  # bad --format
    ["grad", "--wrt", "X"],                              # no EXPR
    ["grad", "--file", "/nonexistent/matdiff/expr.txt", "--wrt", "X"],
    ["frobnicate", "tr(X)"],                             # no such command
])
def test_usage_errors_exit_2(run_err, args):
    r = run_err(args)
    assert r.code == 2, r
    assert "Traceback" not in r.err
    assert r.err.strip()


def test_group_leaves_matdiff_errors_to_main():
    """CliRunner on the bare group: a bad input surfaces as a MatdiffError
    (main turns it into exit 2) or is already exit 2; never a crash of another type."""
    res = CliRunner().invoke(cli, ["grad", "tr(A X", "--wrt", "X"])
    assert res.exit_code != 0
    assert res.exit_code == 2 or isinstance(res.exception, matdiff.MatdiffError)


def test_stdin_bytes_that_are_not_utf8(tmp_path):
    p = subprocess.run(_script() + ["grad", "-", "--wrt", "x"], input=b"\xff\xfe x^T x",
                       capture_output=True, timeout=120)
    assert p.returncode == 2
    assert b"Traceback" not in p.stderr


# --------------------------------------------------------------------------
# the text path imports neither SymPy nor NumPy

def test_text_path_imports_neither_sympy_nor_numpy(tmp_path):
    code = textwrap.dedent("""
        import sys
        import matdiff.cli as cli
        try:
            cli.main(["grad", "x^T A x", "--wrt", "x"])
        except SystemExit as e:
            assert e.code in (0, None), e.code
        heavy = sorted(m for m in ("sympy", "numpy", "jax", "torch") if m in sys.modules)
        print("HEAVY=" + ",".join(heavy))
    """)
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       encoding="utf-8", env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "∂L/∂x = (A + Aᵀ)x" in p.stdout
    assert "HEAVY=\n" in p.stdout or p.stdout.rstrip().endswith("HEAVY="), p.stdout


@pytest.mark.parametrize("args", [
    ["grad", MISSION, "--wrt", "W", "--wrt", "b", "--var", "Y:onehot", "--format", "latex"],
    ["grad", MISSION, "--wrt", "W", "--var", "Y:onehot", "--format", "json"],
    ["grad", "tr(A X", "--wrt", "X"],
    ["grad", "tr(A X)", "--wrt", "Z"],
])
def test_latex_json_and_errors_import_neither_sympy_nor_numpy(tmp_path, args):
    code = textwrap.dedent(f"""
        import sys
        import matdiff.cli as cli
        try:
            cli.main({args!r})
        except SystemExit:
            pass
        print("HEAVY=" + ",".join(sorted(m for m in ("sympy", "numpy", "jax", "torch")
                                         if m in sys.modules)))
    """)
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       encoding="utf-8", env=env, cwd=tmp_path, timeout=120)
    assert p.stdout.rstrip().endswith("HEAVY="), (p.stdout, p.stderr)


def test_fallback_module_invocation():
    """`python -m matdiff.cli` behaves like the script."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    p = subprocess.run([sys.executable, "-m", "matdiff.cli", "grad", MISSION, "--wrt", "W",
                        "--var", "Y:onehot"], capture_output=True, text=True,
                       encoding="utf-8", env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert lines(p.stdout) == [MISSION_W]


# --------------------------------------------------------------------------
# every command × every flag: a flag that does not apply is a usage error
# (exit 2, one line on stderr), never silently ignored (issue 11 #6)

CMD_ARGS = {
    "grad": ["x^T A x", "--wrt", "x"],
    "check": ["x^T A x", "--wrt", "x"],
    "hessian": ["x^T A x", "--wrt", "x"],
    "jacobian": ["tanh(A x)", "--wrt", "x"],
}
FLAGS = {f"format-{f}": ["--format", f] for f in ["text", "latex", "numpy", "sympy", "json"]}
FLAGS.update({f"steps-format-{f}": ["--steps", "--format", f]
              for f in ["text", "latex", "numpy", "sympy", "json"]})
FLAGS.update({"steps": ["--steps"], "seed": ["--seed", "3"], "tol": ["--tol", "1e-4"],
              "two-wrt": ["--wrt", "A"]})
APPLIES = {
    "grad": set(FLAGS) - {"seed", "tol"} - {k for k in FLAGS if k.startswith("steps-format-")}
    | {"steps-format-text", "steps-format-latex"},
    "check": {"seed", "tol", "two-wrt"},
    "hessian": {"format-text", "format-latex", "format-numpy", "format-json"},
    "jacobian": {"format-text", "format-latex", "format-numpy", "format-json"},
}


@pytest.mark.parametrize("flag", list(FLAGS))
@pytest.mark.parametrize("cmd", list(CMD_ARGS))
def test_every_flag_applies_or_is_a_usage_error(cmd, flag):
    r = run_main([cmd] + CMD_ARGS[cmd] + FLAGS[flag])
    assert "Traceback" not in r.err + r.out
    if flag in APPLIES[cmd]:
        assert r.code == 0, r
        assert r.out.strip() and not r.err, r
    else:
        assert r.code == 2, r
        assert r.out == "", r
        assert len(r.err.splitlines()) == 1 and r.err.startswith("matdiff: error: "), r.err
        shown = FLAGS[flag][0] if flag != "steps-format-text" else "--steps"
        assert shown in r.err or "--format" in r.err, r.err


@pytest.mark.parametrize("args,words", [
    (["check", "x'x", "--wrt", "x", "--steps"], ["--steps does not apply to check"]),
    (["check", "x'x", "--wrt", "x", "--format", "latex"], ["--format does not apply to check"]),
    (["hessian", "x'x", "--wrt", "x", "--format", "sympy"], ["'sympy' is not one of"]),
    (["jacobian", "x", "--wrt", "x", "--steps"], ["--steps does not apply to jacobian"]),
    (["hessian", "x'y", "--wrt", "x", "--wrt", "y"], ["hessian takes one --wrt variable"]),
    (["grad", "x'x", "--wrt", "x", "--steps", "--format", "numpy"], ["--steps", "--format numpy"]),
    (["grad", "x'x", "--wrt", "x", "--seed", "1"], ["--seed does not apply to grad (only to check)"]),
    (["grad", "x'x", "--wrt", "x", "--file", __file__], ["give the expression once"]),
])
def test_flag_usage_errors_say_what_does_not_apply(run_err, args, words):
    r = run_err(args)
    assert r.code == 2, r
    assert len(r.err.splitlines()) == 1 and "Traceback" not in r.err, r.err
    for w in words:
        assert w in r.err, r.err


def test_help_lists_only_the_flags_that_apply(run):
    def options(cmd):  # the Options section, without the examples epilog
        return run([cmd, "--help"]).out.split("Options:")[1].split("Examples:")[0]
    check_help = options("check")
    assert "--seed" in check_help and "--steps" not in check_help and "--format" not in check_help
    hessian_help = options("hessian")
    assert "--steps" not in hessian_help and "sympy" not in hessian_help
    grad_help = options("grad")
    assert "--steps" in grad_help and "sympy" in grad_help and "--seed" not in grad_help


def test_steps_in_latex(run):
    out = run(["grad", "x^T A x", "--wrt", "x", "--steps", "--format", "latex"])
    assert out.code == 0
    assert out.out.startswith("\\begin{aligned}") and "\\text{(product rule)}" in out.out


def test_rewrites_flag_names_the_rules_that_fired(run):
    out = run(["grad", "-tr(Y^T log softmax(XW+b))", "--wrt", "W", "--var", "Y:onehot",
               "--rewrites"])
    assert out.code == 0
    assert out.out.strip() == "∂L/∂W = Xᵀ(softmax(XW + 𝟙bᵀ) − Y)"
    from matdiff import ir
    names = {r.name for r in ir.rules()}
    fired = [ln[len("rewrite: "):].split("  ×")[0] for ln in out.err.splitlines()]
    assert fired and set(fired) <= names
    assert "one-hot rows sum to one: Y𝟙 = 𝟙" in fired
