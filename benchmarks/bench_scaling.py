"""Scaling with depth: a k-layer sigmoid MLP, the gradient for every W_i.

Run on demand (not collected by pytest; testpaths = ["tests"]):

    .venv/bin/python benchmarks/bench_scaling.py [--reps N] [--ks 8,16,32,64]

Two spellings of the same loss:

* nested:  sum(σ(…σ(σ(X W1) W2)…) Wk)           (one expression)
* program: Z1 = X W1; H1 = σ(Z1); Z2 = H1 W2; …; L = sum(Zk)
           (named intermediates; the gradients print in terms of H_i)

For each k the table gives, best of N with matdiff.ir.clear_cache() before
every repetition (the IR is hash-consed in a global table):

* derive — matdiff.api.Result(expr, [W1..Wk]): parse, shapes, reverse
  accumulation, simplification (the IR of all k gradients);
* text   — printing the k gradients as the CLI does (Result.printout: one
           `where` block naming the shared δˡ and activations);
* total  — both;
* chars  — the total length of the printed gradients and definitions;
* cli    — the length of everything `matdiff grad EXPR --wrt W1 … --wrt Wk`
           prints (the `∂L/∂Wi = ` of each line, the where block's
           indentation and alignment), from the command run in-process.

The baseline of each ratio is k = 8 measured in the same run; the target is
t(64)/t(8) <= 10 (linear in k would be 8), and the same for the printed
size. Written out without names (`--inline`) the gradient for W1 repeats
every forward activation, so the nested form's text would be Θ(k³)
characters; the where block keeps it Θ(k).

Each layer prints the same text but for its indices (h9 → h12): ten index
occurrences a layer in the nested form (hₗ₋₁ᵀδₗ₊₁, hₗ = σ(hₗ₋₁Wₗ),
δₗ = δₗ₊₁Wₗ₊₁ᵀ ⊙ hₗ ⊙ (1 − hₗ)), seven in the program's. From k = 10 on
they take two digits, so the printed size's ratio k=64/k=8 is above 8 by
more than the length alone explains; the last line of each table gives the
ratios with every index counted as one digit.
"""

import argparse
import gc
import re
import time

import matdiff
import matdiff.ir
from matdiff.api import Result


def nested(k):
    h = "X W1"
    for i in range(2, k + 1):
        h = f"σ({h}) W{i}"
    return f"sum({h})"


def program(k):
    stmts = ["Z1 = X W1"]
    for i in range(2, k + 1):
        stmts.append(f"H{i - 1} = σ(Z{i - 1}); Z{i} = H{i - 1} W{i}")
    stmts.append(f"L = sum(Z{k})")
    return "; ".join(stmts)


def measure(src, wrt, reps):
    best_d = best_t = best_total = float("inf")
    chars = None
    gc_was = gc.isenabled()
    for _ in range(reps):
        matdiff.ir.clear_cache()
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            r = Result(src, wrt)
            t1 = time.perf_counter()
            bodies, defs = r.printout()  # what `matdiff grad` prints: one where block
            texts = bodies + [f"{k} = {v}" for k, v in defs]
            t2 = time.perf_counter()
        finally:
            if gc_was:
                gc.enable()
        best_d, best_t, best_total = min(best_d, t1 - t0), min(best_t, t2 - t1), min(best_total, t2 - t0)
        chars = sum(len(t) for t in texts)
        one_digit = sum(len(_ONE_DIGIT.sub("0", t)) for t in texts)
    return best_d, best_t, best_total, chars, cli_output(src, wrt), one_digit


_ONE_DIGIT = re.compile(r"[0-9]+")


def cli_output(src, wrt):
    """What `matdiff grad SRC --wrt …` prints (run in-process, not timed)."""
    from click.testing import CliRunner
    from matdiff.cli import cli
    args = ["grad", src] + [a for w in wrt for a in ("--wrt", w)]
    run = CliRunner().invoke(cli, args)
    if run.exit_code != 0:
        raise RuntimeError(f"matdiff grad failed: {run.output}")
    return run.output


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ks", default="8,16,32,64,128")
    args = ap.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]

    # warm-up: imports, rule tables, template parsing
    measure(nested(4), [f"W{i}" for i in range(1, 5)], 1)

    print(f"matdiff {matdiff.__version__}; k-layer sigmoid MLP, gradient for each of W1..Wk; "
          f"best of {args.reps}, IR cache cleared before each repetition")
    for form, make in (("nested", nested), ("program", program)):
        print()
        print(f"{form}: {make(3)}")
        hdr = f"{'k':>4} {'derive ms':>10} {'text ms':>10} {'total ms':>10} {'chars':>9} {'cli':>9}"
        print(hdr)
        print("-" * len(hdr))
        res = {}
        for k in ks:
            wrt = [f"W{i}" for i in range(1, k + 1)]
            try:
                d, t, tot, chars, cli, one = measure(make(k), wrt, args.reps)
            except matdiff.MatdiffError as e:
                print(f"{k:>4} error: {str(e).splitlines()[0]}")
                continue
            res[k] = (d, t, tot, chars, len(cli), one, len(_ONE_DIGIT.sub("0", cli)))
            print(f"{k:>4} {d * 1e3:10.2f} {t * 1e3:10.2f} {tot * 1e3:10.2f} {chars:9d} {len(cli):9d}")
        # issue 13's targets: k=64 at most 10× k=8, k=128 at most 2.2× k=64
        for lo, hi, target in ((8, 64, 10.0), (64, 128, 2.2)):
            if lo in res and hi in res:
                ratios = [res[hi][i] / res[lo][i] for i in range(len(res[hi]))]
                verdict = "met" if max(ratios[:5]) <= target else "NOT met"
                print(f"k={hi} / k={lo}: derive {ratios[0]:.1f}, text {ratios[1]:.1f}, "
                      f"total {ratios[2]:.1f}, chars {ratios[3]:.1f}, cli {ratios[4]:.1f} "
                      f"(target <= {target}: {verdict})")
        for lo, hi in ((8, 64), (64, 128)):
            if lo in res and hi in res:
                print(f"k={hi} / k={lo} with every index one digit: chars "
                      f"{res[hi][5] / res[lo][5]:.2f}, cli {res[hi][6] / res[lo][6]:.2f}")


if __name__ == "__main__":
    main()
