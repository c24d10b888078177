"""In-process derivation time: matdiff vs SymPy's matrix-expression `.diff`.

Run on demand (not collected by pytest; testpaths = ["tests"]):

    .venv/bin/python benchmarks/bench_derive.py [--reps N]

For each case the time is the best of N repetitions after a warm-up, and
every repetition derives from scratch:

* matdiff: matdiff.grad(expr, wrt=...).text — parse, shape inference,
  derivation, simplification and printing. matdiff hash-conses IR nodes in
  a global table, so matdiff.ir.clear_cache() is called before each
  repetition (outside the timed region).
* SymPy: building the MatrixSymbol expression, `.diff(X)` and str() of
  the result. SymPy memoises too, so sympy.core.cache.clear_cache() is
  called before each repetition (outside the timed region).

Targets: matdiff/sympy <= 0.1 and matdiff < 1 ms per case.
"""

import argparse
import gc
import statistics
import sys
import time

import matdiff
import matdiff.ir


def sympy_cases():
    """name -> (builder returning (expr, wrt symbol), note). Built lazily, inside the timing."""
    from sympy import (Inverse, Lambda, MatrixSymbol, OneMatrix, Symbol, Trace, exp,
                       HadamardProduct, symbols)
    from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

    n, m, p, q = symbols("n m p q", integer=True, positive=True)
    t = Symbol("t")

    def tr_axb():
        A, X, B = MatrixSymbol("A", n, m), MatrixSymbol("X", m, p), MatrixSymbol("B", p, n)
        return Trace(A * X * B), X

    def atxb():
        a, X, b = MatrixSymbol("a", m, 1), MatrixSymbol("X", m, p), MatrixSymbol("b", p, 1)
        # Trace(1×1) keeps SymPy in matrix form; the bare a.T*X*b gives an array expression
        return Trace(a.T * X * b), X

    def xtax():
        x, A = MatrixSymbol("x", n, 1), MatrixSymbol("A", n, n)
        return x.T * A * x, x

    def tr_xtx():
        X = MatrixSymbol("X", m, p)
        return Trace(X.T * X), X

    def lsq():
        X, W, Y = MatrixSymbol("X", m, p), MatrixSymbol("W", p, q), MatrixSymbol("Y", m, q)
        R = X * W - Y
        return Trace(R.T * R), W

    def tr_inv():
        X, A = MatrixSymbol("X", n, n), MatrixSymbol("A", n, n)
        return Trace(Inverse(X) * A), X

    def at_exp():
        a, X, b = MatrixSymbol("a", m, 1), MatrixSymbol("X", m, p), MatrixSymbol("b", p, 1)
        return Trace(a.T * ElementwiseApplyFunction(exp, X * b)), X

    def sum_sigmoid():
        X, W = MatrixSymbol("X", m, p), MatrixSymbol("W", p, q)
        sig = Lambda(t, 1 / (1 + exp(-t)))
        return OneMatrix(1, m) * ElementwiseApplyFunction(sig, X * W) * OneMatrix(q, 1), W

    def tr_hadamard():
        X, A = MatrixSymbol("X", m, p), MatrixSymbol("A", m, p)
        return Trace(HadamardProduct(X, X).T * A), X

    return {
        "tr(AXB)": tr_axb,
        "aᵀXb": atxb,
        "xᵀAx": xtax,
        "tr(XᵀX)": tr_xtx,
        "‖XW−Y‖²": lsq,
        "tr(X⁻¹A)": tr_inv,
        "aᵀexp(Xb)": at_exp,
        "sum σ(XW)": sum_sigmoid,
        "tr((X⊙X)ᵀA)": tr_hadamard,
    }


# name -> (matdiff expression, wrt)
MATDIFF_CASES = {
    "tr(AXB)": ("tr(A X B)", "X"),
    "aᵀXb": ("a^T X b", "X"),
    "xᵀAx": ("x^T A x", "x"),
    "tr(XᵀX)": ("tr(X^T X)", "X"),
    "‖XW−Y‖²": ("||X W - Y||_F^2", "W"),
    "tr(X⁻¹A)": ("tr(X^-1 A)", "X"),
    "aᵀexp(Xb)": ("a^T exp(X b)", "X"),
    "sum σ(XW)": ("sum(σ(X W))", "W"),
    "tr((X⊙X)ᵀA)": ("tr((X ⊙ X)^T A)", "X"),
}


def best_of(fn, reset, reps, warmup=2):
    for _ in range(warmup):
        reset()
        fn()
    times = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(reps):
            reset()
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
    finally:
        if gc_was:
            gc.enable()
    return min(times), statistics.median(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30, help="repetitions per case (best is kept)")
    ap.add_argument("--sympy-reps", type=int, default=10)
    args = ap.parse_args(argv)

    import sympy
    from sympy.core.cache import clear_cache as sympy_clear

    builders = sympy_cases()
    rows = []
    for name, (expr, wrt) in MATDIFF_CASES.items():
        def run_matdiff(expr=expr, wrt=wrt):
            return matdiff.grad(expr, wrt=wrt).text

        md_best, md_med, md_text = best_of(run_matdiff, matdiff.ir.clear_cache, args.reps)

        def run_sympy(build=builders[name]):
            e, x = build()
            return str(e.diff(x))

        try:
            sp_best, sp_med, sp_text = best_of(run_sympy, sympy_clear, args.sympy_reps, warmup=1)
            sp_note = sp_text if len(sp_text) <= 48 else sp_text[:45] + "..."
        except Exception as ex:  # SymPy cannot express or differentiate it
            sp_best = sp_med = None
            sp_note = f"SymPy cannot: {type(ex).__name__}"
        rows.append((name, md_best, md_med, sp_best, md_text, sp_note))

    print(f"matdiff {matdiff.__version__} vs SymPy {sympy.__version__}, Python "
          f"{sys.version.split()[0]}; best of {args.reps} (matdiff) / {args.sympy_reps} (SymPy), "
          "caches cleared before every repetition")
    print()
    hdr = f"{'case':<14} {'matdiff ms':>10} {'sympy ms':>9} {'ratio':>7}  {'matdiff result':<30} sympy result"
    print(hdr)
    print("-" * len(hdr))
    ratios = []
    for name, md_best, md_med, sp_best, md_text, sp_note in rows:
        if sp_best:
            ratio = md_best / sp_best
            ratios.append(ratio)
            sp_col, r_col = f"{sp_best * 1e3:9.2f}", f"{ratio:7.3f}"
        else:
            sp_col, r_col = f"{'n/a':>9}", f"{'n/a':>7}"
        print(f"{name:<14} {md_best * 1e3:10.3f} {sp_col} {r_col}  {md_text:<30} {sp_note}")
    print()
    md_times = [r[1] for r in rows]
    geo = statistics.geometric_mean(ratios) if ratios else float("nan")
    print(f"ratio matdiff/sympy: geometric mean {geo:.3f}, worst {max(ratios):.3f} "
          f"(target <= 0.1: {'met' if max(ratios) <= 0.1 else 'NOT met'})")
    print(f"matdiff per case: worst {max(md_times) * 1e3:.3f} ms "
          f"(target < 1 ms: {'met' if max(md_times) < 1e-3 else 'NOT met'})")


if __name__ == "__main__":
    main()
