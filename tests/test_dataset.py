"""Layout detection, splitting, and the decode check that skips bad files."""
from pathlib import Path

import numpy as np
import pytest

from conftest import make_class_folders, make_kaggle_flat, stripes, tiny_config, write_image
from paddle_catdog.data.check import drop_unreadable
from paddle_catdog.data.layouts import DataError, find_samples, resolve_splits
from paddle_catdog.data.loader import ImageDataset
from paddle_catdog.data.split import limit_per_class, load_data, stratified_split
from paddle_catdog.config import TrainConfig
from paddle_catdog.transforms import build_transform


def test_kaggle_flat_names(tmp_path):
    make_kaggle_flat(tmp_path, 3)
    (tmp_path / "notes.txt").write_text("not an image")
    s = find_samples(str(tmp_path))
    assert s.layout == "kaggle flat names"
    assert s.classes == ["cat", "dog"]
    assert s.counts() == {"cat": 3, "dog": 3}
    assert all(Path(p).name.startswith(s.classes[y]) for p, y in s.samples)


def test_folder_per_class_with_three_classes_and_nesting(tmp_path):
    make_class_folders(tmp_path, 2, classes=("zebra", "ant", "moose"))
    write_image(tmp_path / "ant" / "deeper" / "x.JPG", stripes(0, 16, np.random.default_rng(0)))
    (tmp_path / "moose" / "looks_like.jpg").mkdir()  # a directory named like an image
    s = find_samples(str(tmp_path))
    assert s.layout == "one folder per class"
    assert s.classes == ["ant", "moose", "zebra"]  # sorted folder names
    assert s.counts() == {"ant": 3, "moose": 2, "zebra": 2}


def test_list_file_with_label_names(tmp_path):
    make_class_folders(tmp_path / "imgs", 2)
    lines = [f"imgs/cat/img_{i}.png 0" for i in range(2)] + [f"imgs/dog/img_{i}.png 1" for i in range(2)]
    (tmp_path / "train_list.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "label_list.txt").write_text("0 cat\n1 dog\n")
    s = find_samples(str(tmp_path / "train_list.txt"))
    assert s.layout == "list file" and s.classes == ["cat", "dog"]
    assert s.counts() == {"cat": 2, "dog": 2}
    assert all(Path(p).is_file() for p, _ in s.samples)


def test_list_file_without_names_and_bad_line(tmp_path):
    make_class_folders(tmp_path / "imgs", 1)
    (tmp_path / "a.txt").write_text("imgs/cat/img_0.png 0\nimgs/dog/img_0.png 1\n")
    assert find_samples(str(tmp_path / "a.txt")).classes == ["0", "1"]
    (tmp_path / "b.txt").write_text("imgs/cat/img_0.png cat\n")
    with pytest.raises(DataError, match="b.txt:1"):
        find_samples(str(tmp_path / "b.txt"))
    (tmp_path / "c.txt").write_bytes(b"imgs/cat/img_0.png 0\n\xff\xfe\x00binary\n")  # not UTF-8
    with pytest.raises(DataError, match="c.txt: not a UTF-8 text file"):
        find_samples(str(tmp_path / "c.txt"))


def test_root_with_train_and_val(kaggle_root):
    assert resolve_splits(str(kaggle_root)) == (str(kaggle_root / "train"), str(kaggle_root / "val"))
    data = load_data(tiny_config(kaggle_root, kaggle_root / "out"))
    assert len(data.train.samples) == 80 and len(data.val.samples) == 24
    assert data.classes == ["cat", "dog"] and not data.skipped


def test_list_files_in_root(tmp_path):
    make_class_folders(tmp_path / "imgs", 3)
    for name, ids in (("train_list.txt", range(2)), ("val_list.txt", range(2, 3))):
        rows = [f"imgs/{c}/img_{i}.png {k}" for k, c in enumerate(("cat", "dog")) for i in ids]
        (tmp_path / name).write_text("\n".join(rows))
    train, val = resolve_splits(str(tmp_path))
    assert train.endswith("train_list.txt") and val.endswith("val_list.txt")


def test_stratified_split_is_seeded_and_balanced():
    samples = [(f"a{i}", 0) for i in range(50)] + [(f"b{i}", 1) for i in range(30)]
    tr1, va1 = stratified_split(samples, 0.2, seed=7)
    tr2, va2 = stratified_split(list(reversed(samples)), 0.2, seed=7)
    assert va1 == va2 and sorted(tr1) == sorted(tr2)
    assert sum(1 for _, y in va1 if y == 0) == 10 and sum(1 for _, y in va1 if y == 1) == 6
    assert not set(tr1) & set(va1) and len(tr1) + len(va1) == 80
    _, va3 = stratified_split(samples, 0.2, seed=8)
    assert va3 != va1


def test_limit_per_class():
    samples = [(f"a{i}", 0) for i in range(10)] + [(f"b{i}", 1) for i in range(10)]
    out = limit_per_class(samples, 3, seed=0)
    assert len(out) == 6 and sum(y for _, y in out) == 3
    assert limit_per_class(samples, 0, seed=0) == samples


def test_bad_files_are_found_with_reasons(tmp_path):
    good = make_kaggle_flat(tmp_path, 2)
    (tmp_path / "cat.90.jpg").write_bytes(b"")
    (tmp_path / "cat.91.jpg").write_text("hello, I am text")
    jpg = good[0].read_bytes()
    (tmp_path / "dog.92.jpg").write_bytes(jpg[: len(jpg) // 3])  # truncated
    s = find_samples(str(tmp_path))
    ok, bad = drop_unreadable(s.samples)
    reasons = dict(bad)
    assert str(tmp_path / "cat.90.jpg") in reasons and "empty" in reasons[str(tmp_path / "cat.90.jpg")]
    assert str(tmp_path / "cat.91.jpg") in reasons
    assert len(ok) >= 4 and all(p not in reasons for p, _ in ok)


def test_dataset_items(tmp_path):
    make_kaggle_flat(tmp_path, 2, size=50)
    s = find_samples(str(tmp_path))
    ds = ImageDataset(s.samples, build_transform(tiny_config(tmp_path, tmp_path), train=False), s.classes)
    img, label = ds[3]
    assert img.shape == (3, 32, 32) and img.dtype == np.float32 and int(label) == 1


@pytest.mark.parametrize("setup,message", [
    (lambda p: None, "not found"),
    (lambda p: p.mkdir(), "no images"),
    (lambda p: make_class_folders(p, 3, classes=("cat",)), "at least 2 classes"),
])
def test_unusable_data_folders(tmp_path, setup, message):
    data = tmp_path / "d"
    setup(data)
    with pytest.raises(DataError, match=message):
        load_data(tiny_config(data, tmp_path / "out"))


@pytest.mark.parametrize("layout", ["kaggle", "class folders"])
def test_a_run_lists_each_folder_once(tmp_path, monkeypatch, layout):
    """Finding the data folder, telling its layout and reading it used to list every folder two
    or three times; within load_data each is listed once. Outside it, every call lists afresh."""
    from paddle_catdog.data import layouts
    if layout == "kaggle":
        make_kaggle_flat(tmp_path / "d" / "train", 6)
        make_kaggle_flat(tmp_path / "d" / "val", 2, start=100)
    else:
        make_class_folders(tmp_path / "d", 6)
    listed = []
    real = layouts._list_images
    monkeypatch.setattr(layouts, "_list_images", lambda folder, recursive: listed.append((str(folder), recursive))
                        or real(folder, recursive))
    data = load_data(TrainConfig(data_dir=str(tmp_path / "d"), progress=False))
    assert len(data.train.samples) + len(data.val.samples) == 12 + (4 if layout == "kaggle" else 0)
    assert listed and len(listed) == len(set(listed)), listed
    listed.clear()
    layouts.find_samples(str(tmp_path / "d" / ("train" if layout == "kaggle" else "")))
    layouts.find_samples(str(tmp_path / "d" / ("train" if layout == "kaggle" else "")))
    assert len(listed) >= 2  # no memo outside a run: a changed folder is seen as it is
