"""The notebooks execute top to bottom (nbclient) with tiny settings, on generated images and, when
CATDOG_DATA is set, on the real photos, and show what they teach (the hand-written loop's loss, the
prediction steps agreeing with Predictor); they are committed executed (every code cell run once, in order, without an error; 01 also runs with no data set); and every markdown
cell holds both languages, Chinese first, then English."""
import math
import re
from pathlib import Path
from typing import List

import pytest

from conftest import ROOT, load_tool, make_kaggle_flat, real_data, requires_real_data

nbformat = pytest.importorskip("nbformat", reason="pip install -r requirements-notebooks.txt")
pytest.importorskip("nbclient", reason="pip install -r requirements-notebooks.txt")
pytest.importorskip("ipykernel", reason="pip install -r requirements-notebooks.txt")

run_notebooks = load_tool("run_notebooks")
PARAMETERS_TAG, INJECTED_TAG = run_notebooks.PARAMETERS_TAG, run_notebooks.INJECTED_TAG
execute_notebook, execution_problems = run_notebooks.execute_notebook, run_notebooks.execution_problems

NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01_cnn_basics.ipynb", "02_train.ipynb", "03_predict_and_explain.ipynb"]
FIGURES = ("curves.png", "confusion_matrix.png", "gradcam.jpg")


def test_notebook_02_writes_the_model_and_the_loop_out():
    """The learner reads (and can change) the CNN class and the training loop, not only calls;
    then the same class trains with paddle.Model and, registered in the model factory, with fit."""
    nb = nbformat.read(str(NOTEBOOKS / "02_train.ipynb"), as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for piece in ("class SimpleCNN(nn.Layer)", "def __init__", "def forward", "loss.backward()",
                  "opt.step()", "opt.clear_grad()", "LOOP_EPOCHS", "fit(cfg)", "paddle.Model(hapi_net)",
                  "paddle.metric.Accuracy()", 'register_model("simple_cnn"', "fit(simple_cfg)"):
        assert piece in code, piece
    order = [code.index(p) for p in ("loss.backward()", "paddle.Model(", "fit(simple_cfg)", "fit(cfg)")]
    assert order == sorted(order), "the hand-written loop, paddle.Model, fit on SimpleCNN, then fit(cfg)"


def test_committed_notebooks_are_executed_top_to_bottom():
    """What a learner opens on GitHub or AI Studio already holds the results of a real run: every
    code cell ran once, in order, without an error (python tools/run_notebooks.py run
    notebooks/*.ipynb -p DATA_DIR=../shared/data/dogs-vs-cats --in-place)."""
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    for name in NAMES:
        nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
        problems = execution_problems(nb)
        assert not problems, f"{name}:\n" + "\n".join(problems)
        tagged = [c for c in nb.cells if PARAMETERS_TAG in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "DATA_DIR = None" in tagged[0].source, name
        assert nb.cells.index(tagged[0]) <= 1, f"{name}: the parameters cell must come first"
        injected = [c.source for c in nb.cells if INJECTED_TAG in c.metadata.get("tags", [])]
        assert all("/work/" not in s and "/tmp/" not in s and "/home/" not in s for s in injected), \
            f"{name}: the committed parameters name a machine's path: {injected}"
        pngs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
        assert len(pngs) >= 3, f"{name}: the executed notebook shows {len(pngs)} figures"


def _notebook(*cells):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", execution_count=n, outputs=outs)
                                           for n, outs in cells])


def test_the_execution_check_finds_each_problem():
    ok = _notebook((1, []), (2, [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]))
    assert execution_problems(ok) == []
    assert "expected 2" in execution_problems(_notebook((1, []), (None, [])))[0]  # a cell never ran
    assert len(execution_problems(_notebook((2, []), (1, [])))) == 2  # run out of order
    error = nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[])
    assert "ValueError: boom" in execution_problems(_notebook((1, [error])))[0]
    big = nbformat.v4.new_output("stream", name="stdout", text="x" * (run_notebooks.MAX_OUTPUT_BYTES + 1))
    assert "bytes" in execution_problems(_notebook((1, [big])))[0]


def test_notebook_01_runs_in_an_empty_folder_without_the_data_set(tmp_path, monkeypatch):
    """A learner who downloads only 01 and has no photos runs it top to bottom: the mechanics run
    on a photo a package ships, and the parts that need the data set say so and skip."""
    monkeypatch.delenv("CATDOG_DATA", raising=False)
    folder = tmp_path / "empty"
    folder.mkdir()
    copy = folder / "01_cnn_basics.ipynb"
    copy.write_bytes((NOTEBOOKS / "01_cnn_basics.ipynb").read_bytes())
    nb = execute_notebook(copy, {}, timeout=600)
    assert execution_problems(nb) == []
    pngs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 5, f"only {len(pngs)} figures without the data set"
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert text.count("skipped: no data set") >= 6 and "skipped: no checkpoint" in text, \
        "each part that needs the photos (or 02's checkpoint) says in one line that it skips"
    assert sorted(p.name for p in folder.iterdir()) == ["01_cnn_basics.ipynb"], "01 wrote files beside itself"


def run_all(data_dir: Path, tmp: Path, **tiny) -> Path:
    """Execute the three notebooks in order (03 uses the checkpoint 02 trains); executed copies
    go to ``tmp/executed`` for reading when a cell fails."""
    out, figures = tmp / "out", tmp / "figures"
    common = {"DATA_DIR": str(data_dir)}
    runs = [
        ("01_cnn_basics.ipynb", {"IMAGE_SIZE": tiny["IMAGE_SIZE"]}),
        ("02_train.ipynb", {"MODEL": "resnet18", "WIDTH": 8, "EPOCHS": 1, "LOOP_EPOCHS": 1, "BATCH_SIZE": 16,
                            "NUM_WORKERS": 0, "OUTPUT": str(out), "FIGURES_DIR": str(figures),
                            "IMAGE_SIZE": tiny["IMAGE_SIZE"], "MAX_PER_CLASS": tiny["MAX_PER_CLASS"],
                            "TRANSFER_IMAGE_SIZE": tiny["IMAGE_SIZE"]}),
        ("03_predict_and_explain.ipynb", {"WEIGHTS": str(out / "best"), "MAX_IMAGES": tiny["MAX_IMAGES"],
                                          "FIGURES_DIR": str(figures)}),
    ]
    if tiny.get("again", True):  # 01 again with the trained checkpoint: the learned-filters branch
        runs.append(("01_cnn_basics.ipynb", {"IMAGE_SIZE": tiny["IMAGE_SIZE"], "WEIGHTS": str(out / "best")}))
    for name, params in runs:
        execute_notebook(NOTEBOOKS / name, {**common, **params}, timeout=300,
                         out_path=tmp / "executed" / name)
    for name in FIGURES:
        assert (figures / name).stat().st_size > 5000, name
    check_what_the_notebooks_show(tmp / "executed")
    return tmp / "executed"


def output_text(path: Path) -> str:
    """The printed output (streams and plain-text results) of an executed notebook."""
    nb = nbformat.read(str(path), as_version=4)
    return "\n".join(_cell_text(c) for c in nb.cells if c.cell_type == "code")


def _cell_text(cell) -> str:
    """A cell's stdout as one text (the kernel may send one printed line in several stream
    messages, e.g. when stderr interleaves), then its plain-text results."""
    stdout = "".join(o.get("text", "") for o in cell.outputs
                     if o.get("output_type") == "stream" and o.get("name") == "stdout")
    rest = [o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs
            if not (o.get("output_type") == "stream" and o.get("name") == "stdout")]
    return "\n".join([stdout] + rest)


def check_what_the_notebooks_show(executed: Path) -> None:
    """02 shows its own CNN class and the package's, and trains it with the hand-written loop
    (one epoch in the tests) before fit; 03 prints each prediction step, and its last step asserts
    that they agree with Predictor (the run fails otherwise)."""
    train = output_text(executed / "02_train.ipynb")
    assert train.count("Total params") >= 3, "summaries of the notebook's SimpleCNN, cnn and resnet18"
    assert "class ConvBlock(nn.Sequential)" in train and "class SimpleCNN(nn.Layer)" in train
    losses = re.findall(r"epoch 1/1: mean training loss (\S+) over (\d+) batches", train)
    assert len(losses) == 1 and math.isfinite(float(losses[0][0])) and int(losses[0][1]) > 0, losses
    accuracy = re.search(r"validation accuracy after 1 epoch\(s\): ([\d.]+) on (\d+) photos", train)
    assert accuracy, train[-2000:]
    correct = float(accuracy[1]) * int(accuracy[2])  # printed to 3 places: a whole number of photos
    assert int(accuracy[2]) in (16, 100) and abs(correct - round(correct)) <= int(accuracy[2]) * 5e-4 + 1e-9
    side_by_side = re.findall(r"^(?:\S+ )?(from scratch|ImageNet features) +([\d.]+) +([\d.]+)$", train, re.M)
    assert [row[0] for row in side_by_side] == ["from scratch", "ImageNet features"], train[-2000:]
    # the same SimpleCNN three ways, same epochs: each row an accuracy in [0, 1] and seconds
    three = re.findall(r"^(?:\S+ )?(hand-written loop|paddle\.Model|fit) +([\d.]+) +([\d.]+)$", train, re.M)
    assert [row[0] for row in three] == ["hand-written loop", "paddle.Model", "fit"], train[-3000:]
    assert all(0 <= float(acc) <= 1 and float(seconds) > 0 for _, acc, seconds in three), three
    assert three[0][1] == f"{float(accuracy[1]):.3f}", "the loop's row is the accuracy printed above"
    for shown in ("Paddle version: ", "plan: ", "TTA average", "by hand "):  # version, plan table, 6.3-6.4
        assert shown in train, shown
    predict = output_text(executed / "03_predict_and_explain.ipynb")
    for step in ("Compose([Decode", "batch paddle.Size([1, 3,", "logits: paddle.Size([1, 2])",
                 "probabilities:", "(class ", "the five steps agree with Predictor",
                 "Paddle version: ", "the formulas by hand agree with grad_cam"):
        assert step in predict, step


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
    # Real photos, a few of them: links to 30 training and 50 validation photos per class (the
    # notebooks score every validation photo several times; 2,000 would take most of the test).
    # 01's learned-filters branch runs on the generated images only: it adds nothing here.
    data = tmp_path / "photos"
    for split, ids in (("train", range(30)), ("val", range(4000, 4050))):
        (data / split).mkdir(parents=True)
        for name in ("cat", "dog"):
            for i in ids:
                (data / split / f"{name}.{i}.jpg").symlink_to(real_data() / split / f"{name}.{i}.jpg")
    run_all(data, tmp_path, IMAGE_SIZE=64, MAX_PER_CLASS=30, MAX_IMAGES=20, again=False)


# ------------------------------------------------------------------------------- both languages
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"(?<![A-Za-z])[A-Za-z]{2,}(?![A-Za-z])")
# An English sentence has some of these; a Chinese one naming `fit`, ResNet or VisualDL has none.
FUNCTION_WORDS = frozenset("""the an of to in on at by for with from and or but is are was be it its
    this that these as into than then what how why when where which each not no one same""".split())


def prose(markdown: str) -> str:
    """Markdown without what is prose in neither language: code (fenced and inline), URLs, link
    targets, HTML tags and LaTeX."""
    text = re.sub(r"```.*?```|~~~.*?~~~", " ", markdown, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "] ", text)
    text = re.sub(r"(?:https?|ftp)://\S+|www\.\S+", " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$", " ", text, flags=re.S)


def language_problems(markdown: str) -> List[str]:
    """What a markdown cell lacks to hold both languages, Chinese first. Each heading needs a few
    CJK characters and an English word ("## 5. 曲线 · Curves"); the rest of the cell (its body)
    needs a few CJK characters and a few English words, one of them a common function word (so
    identifiers in a Chinese sentence do not pass for English), the Chinese first."""
    lines = [line for line in markdown.splitlines() if line.strip()]
    problems = []
    for heading in (line for line in lines if line.lstrip().startswith("#")):
        text = prose(heading)
        if len(CJK.findall(text)) < 2:
            problems.append(f"Chinese is missing in the heading {heading.strip()!r}")
        if not LATIN_WORD.search(text):
            problems.append(f"English is missing in the heading {heading.strip()!r}")
    body = prose("\n".join(line for line in lines if not line.lstrip().startswith("#")))
    if not body.strip():
        return problems
    cjk = CJK.findall(body)
    words = list(LATIN_WORD.finditer(body))
    function = [m for m in words if m[0].lower() in FUNCTION_WORDS]
    if len(cjk) < 4:
        problems.append(f"Chinese is missing ({len(cjk)} CJK characters outside code and headings)")
    if len(words) < 3 or not function:
        problems.append(f"English is missing ({len(words)} Latin-alphabet words outside code and "
                        f"headings, {len(function)} of them common English words such as 'the', 'of', 'to')")
    if cjk and function and function[0].start() < CJK.search(body).start():
        problems.append("English comes before Chinese (write Chinese first, then English)")
    return problems


def notebook_language_problems(path: Path) -> List[str]:
    nb = nbformat.read(str(path), as_version=4)
    return [f"{path.name} cell {i} ({cell.source.strip().splitlines()[0][:50] if cell.source.strip() else ''!r}): {p}"
            for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
            for p in language_problems(cell.source)]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_every_markdown_cell_holds_both_languages(path):
    problems = notebook_language_problems(path)
    assert not problems, ("every markdown cell holds Chinese first, then English (cells counted "
                          "from 0):\n" + "\n".join(problems))


@pytest.mark.parametrize("markdown, problem", [
    ("## 5. Curves\nThe loss and the accuracy of each epoch.", "Chinese is missing"),
    ("## 5. 训练曲线\n每一轮的损失和准确率。", "English is missing"),
    ("## 4. 训练\n用 VisualDL 记录 ResNet 的 loss 和 accuracy。", "English is missing"),  # names only
    ("## 曲线 · Curves\n每一轮的损失：`the loss of each epoch`。", "English is missing"),  # code spans
    ("The loss of each epoch.\n\n每一轮的损失和准确率。", "English comes before Chinese"),
    ("## Curves", "Chinese is missing"),
    ("## 训练曲线", "English is missing"),
    ("## 1. 查看数据 · Look at the data\n\n两个类别的图片数量是否平衡。", "English is missing"),  # body
    ("## 1. Look at the data\n\n两个类别是否平衡。\n\nAre the two classes balanced?", "Chinese is missing"),
])
def test_language_check_finds_monolingual_cells(markdown, problem):
    assert any(p.startswith(problem) for p in language_problems(markdown)), language_problems(markdown)


@pytest.mark.parametrize("markdown", [
    "## 5. 曲线 · Curves",
    "## 6. 训练曲线 · The training curves\n\n每一轮的损失（`history.jsonl`）。\n\nLoss per epoch, read from `history.jsonl`.",
    "softmax 把 logits 变成概率：$p_i = e^{z_i} / \\sum_j e^{z_j}$。\n\nSoftmax turns the logits into probabilities.",
])
def test_language_check_accepts_bilingual_cells(markdown):
    assert language_problems(markdown) == []


def test_language_check_names_the_notebook_and_cell(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 标题 · The title"), nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("Only English in this cell.")])
    nbformat.write(nb, str(tmp_path / "99_mono.ipynb"))
    assert notebook_language_problems(tmp_path / "99_mono.ipynb") == [
        "99_mono.ipynb cell 2 ('Only English in this cell.'): Chinese is missing (0 CJK characters "
        "outside code and headings)"]
