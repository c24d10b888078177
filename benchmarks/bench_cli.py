"""Whole-process start-up time of the CLI vs `python -c "import click"`.

Run on demand (not collected by pytest; testpaths = ["tests"]):

    .venv/bin/python benchmarks/bench_cli.py [--runs N]

Times, with time.perf_counter around subprocess.run, the mission example

    matdiff grad "-tr(Y^T log softmax(XW+b))" --wrt W --var Y:onehot

against the floor any click application pays, `python -c "import click"`
with the same interpreter. The commands alternate (A B A B ...) after a
warm-up, so a drift in the machine's speed hits both; the table gives min
and median of each and the ratios. Target: matdiff/baseline <= 1.3 (the
text path must not import SymPy or NumPy).

Bytecode: an installed tool runs from cached .pyc files, but with
PYTHONDONTWRITEBYTECODE=1 (set in some sandboxes) an editable install
recompiles every matdiff module on every start while click's .pyc files,
written by pip, are still used. The headline numbers therefore run both
commands with bytecode caching on, cached under a temporary
PYTHONPYCACHEPREFIX (nothing is written into the repository); one extra row
shows matdiff without any bytecode, for information.

The same comparison can be made with any external whole-process timer, e.g.
`hyperfine -N --warmup 3 'python -c "import click"' 'matdiff grad ...'`
or by repeating `/usr/bin/time -v matdiff grad ...` for wall time and peak memory.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

MISSION = ["grad", "-tr(Y^T log softmax(XW+b))", "--wrt", "W", "--var", "Y:onehot"]
EXPECTED = "∂L/∂W = Xᵀ(softmax(XW + 𝟙bᵀ) − Y)"


def matdiff_command():
    exe = os.path.join(os.path.dirname(sys.executable), "matdiff")
    if os.path.exists(exe):
        return [exe] + MISSION
    return [sys.executable, "-m", "matdiff.cli"] + MISSION


def time_once(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{cmd!r} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return dt, p.stdout.decode("utf-8", "replace")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="counted runs of each command")
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args(argv)

    base = dict(os.environ, PYTHONIOENCODING="utf-8")
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    pyc_dir = tempfile.mkdtemp(prefix="matdiff-bench-pyc-")
    cached = dict(base, PYTHONPYCACHEPREFIX=pyc_dir)
    no_pyc = dict(base, PYTHONDONTWRITEBYTECODE="1")  # as in a sandbox that sets it
    commands = {
        "matdiff grad (mission)": (matdiff_command(), cached),
        'python -c "import click"': ([sys.executable, "-c", "import click"], cached),
        'python -c "pass"': ([sys.executable, "-c", "pass"], cached),
        "matdiff grad, no .pyc": (matdiff_command(), no_pyc),
    }
    for _ in range(args.warmup):
        for cmd, env in commands.values():
            time_once(cmd, env)
    out = time_once(*commands["matdiff grad (mission)"])[1].strip()
    if out != EXPECTED:
        print(f"warning: unexpected output {out!r}")

    times = {k: [] for k in commands}
    for _ in range(args.runs):
        for k, (cmd, env) in commands.items():
            times[k].append(time_once(cmd, env)[0])

    a, b = times["matdiff grad (mission)"], times['python -c "import click"']
    pair = [x / y for x, y in zip(a, b)]

    print(f"Python {sys.version.split()[0]}; {args.runs} runs each after {args.warmup} warm-up, "
          "interleaved; wall time of the whole process")
    print()
    hdr = f"{'command':<28} {'min ms':>8} {'median ms':>10} {'max ms':>8}"
    print(hdr)
    print("-" * len(hdr))
    for k, ts in times.items():
        print(f"{k:<28} {min(ts) * 1e3:8.1f} {statistics.median(ts) * 1e3:10.1f} {max(ts) * 1e3:8.1f}")
    print()
    r_min = min(a) / min(b)
    r_med = statistics.median(a) / statistics.median(b)
    r_pair = statistics.median(pair)
    print("ratio matdiff / import-click baseline:")
    print(f"  min/min        {r_min:.3f}")
    print(f"  median/median  {r_med:.3f}")
    print(f"  median of the run-by-run ratios {r_pair:.3f}")
    print(f"target <= 1.3: {'met' if r_med <= 1.3 else 'NOT met'} (median/median)")
    extra = statistics.median(a) - statistics.median(b)
    print(f"matdiff's own cost on top of click: {extra * 1e3:.1f} ms (median)")
    nb = statistics.median(times["matdiff grad, no .pyc"]) / statistics.median(b)
    print(f"without bytecode caching (PYTHONDONTWRITEBYTECODE=1): median/median {nb:.3f}")
    import shutil
    shutil.rmtree(pyc_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
