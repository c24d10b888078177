"""The notebooks in notebooks/ run top to bottom (their code cells hold asserts)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, capsys):
    nb = json.loads(path.read_text(encoding="utf-8"))
    namespace = {"__name__": "__notebook__"}
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert cells
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        # The project's own notebook code, run as Jupyter would run it.
        exec(compile(source, f"{path.name}[cell {i}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert "∂L/∂W = Xᵀ(softmax(XW + 𝟙bᵀ) − Y)" in out
