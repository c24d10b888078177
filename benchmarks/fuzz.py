"""The differential fuzzer at scale: random well-typed programs, each in
several spellings, against the reference interpreter and autograd.

    python benchmarks/fuzz.py --n 10000 --seed 0          # counts and reproducers
    python benchmarks/fuzz.py --n 2000 --workers 2 --no-shrink
    python benchmarks/fuzz.py --one 1234                  # every spelling of one seed

Prints the count of each outcome (per spelling and per program: a program
counts under the first failing class of its spellings), the rejections
grouped by message (documented limits marked), and for each failing class a
few reproducers as `matdiff grad …` command lines, shrunk by replacing
subtrees with variables while the failure persists. The generator, the
classification and the shrinker are in tests/fuzz_programs.py; autograd is
needed (`pip install -e ".[dev]"`). Runs from a checkout: the repository
root and tests/ are put on sys.path.
"""

import argparse
import collections
import multiprocessing as mp
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import fuzz_programs as F  # noqa: E402


def work(args):
    seed, n_spellings, depth = args
    import warnings
    warnings.simplefilter("ignore")
    try:
        program, outs = F.fuzz_one(seed, n_spellings, depth)
    except Exception as e:  # a bug of the fuzzer itself: report, do not hide
        return seed, "fuzzer error", f"{type(e).__name__}: {e}"
    if outs is None:
        return seed, None, None
    return seed, [(o.outcome, o.src, o.wrt, o.vars, o.detail) for o in outs], sorted(program.features)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000, help="number of programs")
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--spellings", type=int, default=3)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--show", type=int, default=3, help="reproducers shown per failing class")
    ap.add_argument("--no-shrink", action="store_true", help="do not minimise reproducers")
    ap.add_argument("--one", type=int, default=None, help="show every spelling of one seed")
    a = ap.parse_args(argv)

    if a.one is not None:
        program, outs = F.fuzz_one(a.one, a.spellings, a.depth)
        print(f"seed {a.one}: wrt {program.wrt}, vars {program.decls}")
        for o in outs or []:
            print(f"  {o.outcome:18s} {F.command_line(o)}\n  {'':18s} {o.detail}")
        if outs is None:
            print("  discarded (the reference evaluation is not usable at this data)")
        return 0

    t0 = time.time()
    jobs = [(s, a.spellings, a.depth) for s in range(a.seed, a.seed + a.n)]
    per_spelling = collections.Counter()
    per_program = collections.Counter()
    features = collections.Counter()
    examples = collections.defaultdict(list)
    rejections = collections.Counter()
    rejections_documented = set()
    fuzzer_errors = []
    discarded = 0
    if a.workers > 1:
        with mp.get_context("fork").Pool(a.workers) as pool:
            results = list(pool.imap_unordered(work, jobs, chunksize=20))
    else:
        results = [work(j) for j in jobs]
    for seed, outs, feats in sorted(results, key=lambda r: r[0]):
        if outs == "fuzzer error":
            fuzzer_errors.append((seed, feats))
            continue
        if outs is None:
            discarded += 1
            continue
        features.update(feats)
        worst = "right"
        for outcome, src, wrt, vars_, detail in outs:
            per_spelling[outcome] += 1
            if outcome != "right":
                examples[outcome].append((seed, src, wrt, vars_, detail))
                if worst == "right" or F.OUTCOMES.index(outcome) > F.OUTCOMES.index(worst):
                    worst = outcome
            if outcome == "rejected":
                rejections[F.rejection_key(detail)] += 1
                if F.documented_limit(detail):
                    rejections_documented.add(F.rejection_key(detail))
        per_program[worst] += 1
    elapsed = time.time() - t0

    n_prog = sum(per_program.values())
    n_sp = sum(per_spelling.values())
    print(f"matdiff differential fuzz: seeds {a.seed}…{a.seed + a.n - 1}, {a.spellings} spellings "
          f"each, {a.workers} worker(s), {elapsed:.0f} s")
    print(f"programs: {a.n} drawn, {n_prog} run, {discarded} discarded "
          f"(reference not usable at the data), {len(fuzzer_errors)} fuzzer errors")
    print(f"\n{'outcome':20s} {'spellings':>10s} {'programs':>10s}")
    for k in F.OUTCOMES:
        print(f"{k:20s} {per_spelling[k]:10d} {per_program[k]:10d}")
    print(f"{'total':20s} {n_sp:10d} {n_prog:10d}")
    if rejections:
        print("\nrejections by message (lower-case words of the message; examples below):")
        for msg, c in rejections.most_common():
            limit = F.documented_limit(msg) or (msg in rejections_documented and "see below")
            print(f"  {c:6d}  {msg}  [{'documented limit: ' + limit if limit else 'UNDOCUMENTED'}]")
    if fuzzer_errors:
        print("\nfuzzer errors (bugs of the fuzzer, not of matdiff):")
        for seed, msg in fuzzer_errors[:10]:
            print(f"  seed {seed}: {msg}")
    for k in F.FAILURES + ["rejected"]:
        ex = examples.get(k)
        if not ex:
            continue
        print(f"\n== {k}: {len(ex)} spellings, {len({e[0] for e in ex})} programs")
        groups = collections.defaultdict(list)
        for e in ex:
            groups[F.failure_key(k, e[4])].append(e)
        for key, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            print(f"  -- {key or k}: {len(items)} spellings, {len({e[0] for e in items})} programs")
            shown = set()
            for seed, src, wrt, vars_, detail in sorted(items, key=lambda e: len(e[1])):
                if seed in shown:
                    continue
                shown.add(seed)
                o = F.Outcome(src, wrt, vars_, k, detail)
                print(f"    seed {seed}:  {F.command_line(o)}\n        {detail[:400]}")
                if not a.no_shrink and k != "rejected":
                    small = F.shrink(seed, k, a.spellings, a.depth)
                    if small is not None and small.src != src:
                        print(f"      shrunk:  {F.command_line(small)}\n        {small.detail[:400]}")
                if len(shown) >= a.show:
                    break
    print("\nconstructs drawn (programs):")
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(features.items())))
    bad = sum(per_program[k] for k in F.FAILURES)
    return 1 if bad or fuzzer_errors else 0


if __name__ == "__main__":
    sys.exit(main())
