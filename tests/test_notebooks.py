"""The notebooks execute top to bottom (nbclient) with tiny settings, on generated images and, when
CATDOG_DATA is set, on the real photos; and they are committed without outputs."""
from pathlib import Path

import pytest

from conftest import ROOT, load_tool, make_kaggle_flat, real_data, requires_real_data

nbformat = pytest.importorskip("nbformat", reason="pip install -r requirements-notebooks.txt")
pytest.importorskip("nbclient", reason="pip install -r requirements-notebooks.txt")
pytest.importorskip("ipykernel", reason="pip install -r requirements-notebooks.txt")

run_notebooks = load_tool("run_notebooks")
PARAMETERS_TAG, execute_notebook, has_outputs = (run_notebooks.PARAMETERS_TAG, run_notebooks.execute_notebook,
                                                 run_notebooks.has_outputs)

NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01_cnn_basics.ipynb", "02_train.ipynb", "03_predict_and_explain.ipynb"]
FIGURES = ("curves.png", "confusion_matrix.png", "gradcam.jpg")


def test_committed_notebooks_are_stripped_and_parameterised():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    for name in NAMES:
        nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
        assert not has_outputs(nb), f"{name} has outputs: python tools/run_notebooks.py strip notebooks/*.ipynb"
        tagged = [c for c in nb.cells if PARAMETERS_TAG in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "DATA_DIR = None" in tagged[0].source, name
        assert nb.cells.index(tagged[0]) <= 1, f"{name}: the parameters cell must come first"


def run_all(data_dir: Path, tmp: Path, **tiny) -> Path:
    """Execute the three notebooks in order (03 uses the checkpoint 02 trains); executed copies
    go to ``tmp/executed`` for reading when a cell fails."""
    out, figures = tmp / "out", tmp / "figures"
    common = {"DATA_DIR": str(data_dir)}
    runs = [
        ("01_cnn_basics.ipynb", {"IMAGE_SIZE": tiny["IMAGE_SIZE"]}),
        ("02_train.ipynb", {"MODEL": "resnet18", "WIDTH": 8, "EPOCHS": 1, "BATCH_SIZE": 16,
                            "NUM_WORKERS": 0, "OUTPUT": str(out), "FIGURES_DIR": str(figures),
                            "IMAGE_SIZE": tiny["IMAGE_SIZE"], "MAX_PER_CLASS": tiny["MAX_PER_CLASS"]}),
        ("03_predict_and_explain.ipynb", {"WEIGHTS": str(out / "best"), "MAX_IMAGES": tiny["MAX_IMAGES"],
                                          "FIGURES_DIR": str(figures)}),
        # 01 again with the trained checkpoint: the learned-filters branch
        ("01_cnn_basics.ipynb", {"IMAGE_SIZE": tiny["IMAGE_SIZE"], "WEIGHTS": str(out / "best")}),
    ]
    for name, params in runs:
        execute_notebook(NOTEBOOKS / name, {**common, **params}, timeout=300,
                         out_path=tmp / "executed" / name)
    for name in FIGURES:
        assert (figures / name).stat().st_size > 5000, name
    return tmp / "executed"


def test_notebooks_run_on_generated_images(tmp_path):
    data = tmp_path / "data"
    make_kaggle_flat(data / "train", 24, size=64, seed=1)
    make_kaggle_flat(data / "val", 8, size=64, seed=2, start=1000)
    executed = run_all(data, tmp_path, IMAGE_SIZE=32, MAX_PER_CLASS=0, MAX_IMAGES=16)
    # the pictures were really drawn: every notebook shows images
    for name in NAMES:
        nb = nbformat.read(str(executed / name), as_version=4)
        pngs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if "image/png" in o.get("data", {})]
        assert len(pngs) >= 3, (name, len(pngs))


@requires_real_data
def test_notebooks_run_on_real_photos(tmp_path):
    run_all(real_data(), tmp_path, IMAGE_SIZE=64, MAX_PER_CLASS=30, MAX_IMAGES=20)
