"""The code and SymPy stages of an op that exists only as rule entries: a
structural op registered at run time, with `numpy` / `sympy` templates (one
and two arguments, {shape}), is emitted by the NumPy, JAX and PyTorch
emitters and converted to SymPy with no Python of its own, and its gradient
(from its pullback templates) runs in every backend."""

import importlib.util
import textwrap
import types

import numpy as np
import pytest
import sympy as sp

from matdiff import ir
from matdiff.diff import gradients
from matdiff.ops import registry
from matdiff.numpy_emit import Emitter, compile_module, module_source
from matdiff.sympy_out import to_sympy

RULES = textwrap.dedent('''
    [sumsq]
    # the sum of the squared entries, a scalar
    args = ["X"]
    differential.X = "2 sum(X ⊙ dX)"
    pullback.X = "2 G X"
    numpy = "_np.sum(_np.square({X}))"
    sympy = "Sum(HadamardProduct({X}, {X}))"

    [hprod]
    # the Hadamard product as an op of its own, A ⊙ B
    args = ["A", "B"]
    differential.A = "dA ⊙ B"
    differential.B = "A ⊙ dB"
    pullback.A = "G ⊙ B"
    pullback.B = "G ⊙ A"
    numpy = "{A} * {B}"
    sympy = "HadamardProduct({A}, {B})"

    [fold_rows]
    # a vector's entries as a matrix, row by row (NumPy's C order)
    args = ["X"]
    differential.X = "fold_rows(dX)"
    pullback.X = "vec(Gᵀ)"
    numpy = "_np.reshape({X}, ({rows}, {cols}))"
    sympy = "Transpose(Unvec({X}, {cols}, {rows}))"

    [ravel_rows]
    # fold_rows undone: a matrix's entries row by row, a vector
    args = ["X"]
    differential.X = "ravel_rows(dX)"
    pullback.X = "unvec_like(G, Xᵀ)ᵀ"
    numpy = "_np.reshape({X}, {shape})"
    sympy = "Vec(Transpose({X}))"
''')


@pytest.fixture
def extended(tmp_path):
    path = tmp_path / "more_ops.toml"
    path.write_text(RULES, encoding="utf-8")
    registry.register_file(path)
    yield
    registry.unregister_all()


def _problem():
    x = ir.var("x", "vector", (12, 1))
    w = ir.var("w", "vector", (12, 1))
    h = ir._make("hprod", (x, w), shape=(12, 1))
    folded = ir._make("fold_rows", (h,), shape=(3, 4))
    C = ir.var("C", "matrix", (3, 4))
    again = ir._make("ravel_rows", (ir._make("fold_rows", (ir._make("ravel_rows", (folded,),
                                                                     shape=(12, 1)),),
                                             shape=(3, 4)),), shape=(12, 1))
    root = ir.add(ir._make("sumsq", (ir.mul(folded, C),)),
                  ir._make("sumsq", (ir.mul(ir._make("fold_rows", (again,), shape=(3, 4)), C),)))
    return types.SimpleNamespace(variables={"x": x, "w": w, "C": C}, root=root,
                                 src="sumsq(fold_rows(x ⊙ w) ⊙ C) + sumsq(fold_rows(ravel_rows(...)) ⊙ C)")


def _data():
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=12), "w": rng.normal(size=12), "C": rng.normal(size=(3, 4))}


def _truth(x, w, C):
    # twice sum((fold(x ⊙ w) ⊙ C)²) (ravel_rows undoes fold_rows);
    # ∂/∂x = 4 (x ⊙ w) ⊙ w ⊙ vec(Cᵀ)² (C read row by row)
    c = C.reshape(-1)
    return 2 * np.sum((x * w * c) ** 2), 4 * x * w * w * c * c


BACKENDS = ["numpy"] + [b for b in ("jax", "torch") if importlib.util.find_spec(b)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_registered_op_emits_from_its_templates(extended, backend):
    from matdiff.emit import emitter_class
    problem = _problem()
    x = problem.variables["x"]
    grads = gradients(problem.root, [x])
    src = module_source(problem, {"x": grads[x]}, emitter=emitter_class(backend))
    assert "reshape(" in src
    ns = compile_module(src)
    arrays = _data()
    if backend == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
        arrays = {k: jax.numpy.asarray(v) for k, v in arrays.items()}
    elif backend == "torch":
        import torch
        arrays = {k: torch.as_tensor(v) for k, v in arrays.items()}
    value, g = ns["value_and_gradient"](**arrays)
    want_v, want_g = _truth(**_data())
    assert np.isclose(float(value), want_v)
    np.testing.assert_allclose(np.asarray(g), want_g)


def test_a_registered_op_in_sympy(extended):
    problem = _problem()
    e = to_sympy(problem.root)
    symbols = {str(s): s for s in e.atoms(sp.MatrixSymbol)}
    arrays = _data()
    value = e.subs({symbols[k]: sp.ImmutableMatrix(v.reshape(v.shape[0], -1))
                    for k, v in arrays.items()}).doit()
    assert np.isclose(float(value), _truth(**arrays)[0])


def test_an_op_without_code_says_which_key_is_missing(tmp_path):
    path = tmp_path / "bare.toml"
    path.write_text('[bare]\nargs = ["X"]\ndifferential.X = "bare(dX)"\npullback.X = "bare(G)"\n')
    registry.register_file(path)
    try:
        X = ir.var("X", "matrix", (3, 4))
        node = ir._make("bare", (X,), shape=(3, 4))
        with pytest.raises(Exception, match="numpy"):
            Emitter({"X": X}).run([node])
        with pytest.raises(Exception, match="sympy"):
            to_sympy(node)
    finally:
        registry.unregister_all()
