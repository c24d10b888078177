"""--format jax / torch on the command line and in the API: writing a module
imports neither JAX nor PyTorch (nor NumPy); the module is self-contained
source whose only user text is the expression constant. Runs without either
framework installed."""

import ast
import os
import subprocess
import sys
import textwrap

import pytest

from matdiff.api import Result
from matdiff.higher import Higher

MISSION = "-tr(Y^T log softmax(XW+b))"


@pytest.mark.parametrize("args", [
    ["grad", MISSION, "--wrt", "W", "--wrt", "b", "--var", "Y:onehot", "--format", "jax"],
    ["grad", MISSION, "--wrt", "W", "--var", "Y:onehot", "--format", "torch"],
    ["hessian", "sum(log(1 + exp(-y .* (X w))))", "--wrt", "w", "--format", "jax"],
    ["jacobian", "tanh(W2 tanh(W1 x))", "--wrt", "x", "--format", "torch"],
])
def test_writing_a_module_imports_no_array_library(tmp_path, args):
    code = textwrap.dedent(f"""
        import sys
        import matdiff.cli as cli
        try:
            cli.main({args!r})
        except SystemExit as e:
            assert e.code in (0, None), e.code
        print("HEAVY=" + ",".join(sorted(m for m in ("sympy", "numpy", "jax", "torch")
                                         if m in sys.modules)))
    """)
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       encoding="utf-8", env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    out, heavy = p.stdout.rsplit("HEAVY=", 1)
    assert heavy.strip() == "", heavy
    tree = ast.parse(out)  # a module
    fmt = args[-1]
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    assert imported <= {fmt, "math"}, imported
    assert "import numpy" not in out


def test_user_text_enters_only_as_the_expression_constant():
    # names that are not Python identifiers, or that clash with the module's own, are renamed
    src = "lambda tr(np^T value) + def^T def + tr(sum^T np) + function^T function"
    vars = {"np": "matrix", "value": "matrix", "def": "vector", "sum": "matrix",
            "lambda": "scalar", "function": "vector"}
    for backend in ("jax", "torch"):
        text = Result(src, ["np", "def", "function"], vars).source(backend)
        tree = ast.parse(text)
        constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                     and isinstance(n.value, str)]
        assert src in constants
        params = {a.arg for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                  and n.name == "value" for a in n.args.kwonlyargs}
        assert params == {"np", "value", "def_", "sum", "lambda_", "function"}


def test_unknown_backend_is_an_error():
    from matdiff import MatdiffError
    with pytest.raises(MatdiffError, match="unknown backend"):
        Result("x'x", ["x"]).source("tensorflow")


def test_api_source_for_each_backend():
    r = Result(MISSION, ["W", "b"], {"Y": "onehot"})
    assert r.numpy_source() == r.source("numpy")
    g = r.gradient("W")
    assert "import jax" in g.source("jax") and "import torch" in g.source("torch")
    h = Higher("logsumexp(x)", ["x"], {}, "hessian")
    assert "_jnp." in h.source("jax") and "_torch." in h.source("torch")
