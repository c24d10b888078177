"""The differential fuzzer's programs (tests/fuzz_programs.py) through the JAX
and PyTorch kernels: random well-typed programs over the whole language, each
module's value and gradients against the fuzzer's truth (autograd of the
reference interpreter; sym(G) for symmetric variables, projected for onehot
ones), with the fuzzer's tolerance. A backend that is not installed skips."""

import warnings

import numpy as np
import pytest

import fuzz_programs as fz
from matdiff.api import Result
from matdiff.errors import MatdiffError
from matdiff.numpy_emit import compile_module, py_name

# 400 seeds of each pass; the suite runs fewer for JAX, which compiles each program
SEEDS = {"jax": range(30), "torch": range(150)}


def _framework(backend):
    if backend == "jax":
        jax = pytest.importorskip("jax")
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        return lambda v: jnp.asarray(v), lambda f: jax.jit(f), lambda x: np.asarray(x)
    torch = pytest.importorskip("torch")
    return (lambda v: torch.tensor(v, dtype=torch.float64), lambda f: f,
            lambda x: x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x))


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_fuzzed_programs_in_the_backends(backend):
    to, wrap, back = _framework(backend)
    checked = 0
    failures = []
    for seed in SEEDS[backend]:
        program = fz.generate(seed, max_depth=3)
        rng = np.random.default_rng(seed)
        try:
            arrays = fz.make_data(program, rng)
            tr = fz.truth(program, arrays)
        except fz.Discard:
            continue
        src = fz.canonical_text(program)
        try:
            result = Result(src, program.wrt, program.decls)
        except MatdiffError:
            continue  # rejections are the NumPy fuzzer's business
        ns = compile_module(result.source(backend))
        kwargs = {py_name(n): to(v) for n, v in arrays.items()}
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v, grads = wrap(ns["value_and_gradient"])(**kwargs)
        if len(program.wrt) == 1:
            grads = (grads,)
        ok, err = fz.close(float(back(v)), tr.value)
        if not ok:
            failures.append(f"{src!r}: value {back(v)} want {tr.value}")
        for w, g in zip(program.wrt, grads):
            g = back(g)
            kind = program.vars[w].kind if w in program.vars else None
            ok, err = fz.close(fz.project_onehot(g) if kind == "onehot" else g, tr.grads[w])
            if not ok:
                failures.append(f"{src!r} --wrt {w}: rel. error {err:.2e}")
        checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= len(SEEDS[backend]) // 2, checked
