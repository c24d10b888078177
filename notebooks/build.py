"""Build the notebooks from their text sources and execute them, outputs kept.

    python notebooks/build.py            # every notebooks/src/*.py -> notebooks/*.ipynb
    python notebooks/build.py seed002    # only the sources whose name contains 'seed002'

A source is a Python file in the "percent" format (the one jupytext reads):
`# %%` starts a code cell, `# %% [markdown]` a Markdown cell whose lines are
comments (`# ` is stripped). The built notebook is executed in a fresh
`python3` kernel with nbclient and saved with its outputs, so a reader on a
code host sees them; tests/test_notebooks.py runs every notebook again.
"""

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"


def cells_of(text):
    """[(kind, source)] of a percent-format source."""
    cells, kind, lines = [], None, []

    def flush():
        if kind is not None:
            body = "\n".join(lines).strip("\n")
            if body:
                cells.append((kind, body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind == "markdown":
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def notebook_of(path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, body in cells_of(path.read_text(encoding="utf-8")):
        new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(new(body))
    return nb


def execute(nb, timeout=120):
    # one BLAS thread in the kernel, as in the tests: the notebooks' products are
    # small, and on a busy machine threads only wait for each other
    for var in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]:
        os.environ.setdefault(var, "1")
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False, coalesce_streams=True,
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return nb


def main(argv):
    sources = sorted(SRC.glob("*.py"))
    if argv:
        sources = [s for s in sources if any(a in s.stem for a in argv)]
    for src in sources:
        nb = execute(notebook_of(src))
        # cell ids stable from build to build, so the stored files diff well
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"cell-{i}"
        out = HERE / f"{src.stem}.ipynb"
        nbformat.write(nb, str(out))
        print("wrote", out.relative_to(HERE.parent))


if __name__ == "__main__":
    main(sys.argv[1:])
