"""Every notebook in notebooks/ runs top to bottom in a fresh Jupyter kernel.

The notebooks check their own formulas (asserts in code cells, against finite
differences or NumPy written by hand), so a clean run is the test. Each one is
executed with nbclient in a new kernel of this very interpreter (ipykernel,
from the dev extra, started through a kernel spec made for the test, so that a
`python3` spec of another environment on the machine is never picked up); any
error fails, and each cell has a timeout. The stored files must carry their
outputs and match their text sources in notebooks/src/ (rebuild them with
`python notebooks/build.py`).
"""

import json
import sys
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds, per cell


def test_there_are_at_least_six_notebooks():
    assert len(NOTEBOOKS) >= 6, [p.name for p in NOTEBOOKS]
    names = " ".join(p.name for p in NOTEBOOKS)
    for part in ["seed000", "seed001", "seed002", "seed003", "seed004", "tour"]:
        assert part in names, f"no notebook for {part}"


def _code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_with_outputs_and_in_sync(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = _code_cells(nb)
    assert cells
    for i, cell in enumerate(cells):
        assert cell.get("execution_count") is not None, f"code cell {i} of {path.name} was not executed"
        assert not any(o.get("output_type") == "error" for o in cell.get("outputs", []))
    src = path.parent / "src" / f"{path.stem}.py"
    if src.exists():
        import importlib.util
        spec = importlib.util.spec_from_file_location("nb_build", path.parent / "build.py")
        build = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(build)
        stored = [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]
        assert stored == build.cells_of(src.read_text(encoding="utf-8")), (
            f"{path.name} differs from {src.name}: run `python notebooks/build.py {path.stem}`")


KERNEL = "matdiff-notebooks"


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory):
    """A directory with a kernel spec that starts ipykernel in this interpreter."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (matdiff tests)", "language": "python"}))
    return root


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, jupyter_path):
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))  # searched before the user's and the system's
    # The kernel inherits the environment: no display, no GUI backend, and one
    # BLAS thread (a notebook's small products gain nothing from more, and on a
    # busy 2-core machine threads only wait for each other).
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for var in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]:
        monkeypatch.setenv(var, "1")
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                                     allow_errors=False, record_timing=False,
                                     resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start
    for cell in _code_cells(nb):
        assert not any(o.get("output_type") == "error" for o in cell.get("outputs", []))
    print(f"{path.name}: {elapsed:.1f} s")
