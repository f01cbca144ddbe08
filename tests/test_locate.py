"""Where the photos are found: the download folder from the checkout and from notebooks/, folders
with one class never taken for a data set, and AI Studio's zips unpacked once, safely."""
import logging
import zipfile
from pathlib import Path
from typing import Dict, Optional

import pytest

from conftest import make_class_folders, make_kaggle_flat
from paddle_catdog.data import archive
from paddle_catdog.data.layouts import DataError, find_samples, resolve_splits
from paddle_catdog.data.locate import ENV_VAR, default_candidates, find_data_dir, usable


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture
def log_lines(caplog):
    """The paddle_catdog logger's messages (it propagates: setup_logging leaves that alone)."""
    caplog.set_level(logging.INFO, logger="paddle_catdog")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "paddle_catdog"]


def resolve(cwd: Path, aistudio: Path, data_dir: Optional[str] = None) -> Path:
    return find_data_dir(data_dir, candidates=default_candidates(cwd, aistudio))


def counts(folder: Path) -> Dict[str, int]:
    return find_samples(resolve_splits(str(folder))[0]).counts()


def make_zip(path: Path, files: Dict[str, Path], extra: Optional[Dict[str, bytes]] = None) -> Path:
    """A zip holding ``files`` (member name -> file on disk) and ``extra`` (name -> bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, src in files.items():
            z.write(src, name)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def kaggle_zip(path: Path, src: Path, n: int = 3) -> Path:
    """Kaggle's train.zip: train/cat.0.jpg ..., with the __MACOSX junk a Mac adds."""
    images = make_kaggle_flat(src, n, size=16)
    return make_zip(path, {f"train/{p.name}": p for p in images},
                    {f"__MACOSX/train/._{images[0].name}": b"\0\5\26\7 resource fork"})


def petimages_zip(path: Path, src: Path) -> Path:
    """Microsoft's kagglecatsanddogs_5340.zip: PetImages/Cat/..., PetImages/Dog/..., a licence."""
    images = make_class_folders(src, 2, classes=("Cat", "Dog"), size=16, ext=".jpg")
    files = {f"PetImages/{c}/{p.name}": p for c, paths in images.items() for p in paths}
    return make_zip(path, files, {"CDLA-Permissive-2.0.pdf": b"%PDF", "readme[1].txt": b"hi"})


def test_the_download_folder_is_found_from_the_checkout_and_from_notebooks(tmp_path):
    cwd, aistudio = tmp_path / "repo", tmp_path / "no-aistudio"
    make_class_folders(cwd / "data" / "PetImages", 2, classes=("Cat", "Dog"), size=16)
    (cwd / "notebooks").mkdir()
    assert resolve(cwd, aistudio) == cwd / "data" / "PetImages"
    assert resolve(cwd / "notebooks", aistudio) == cwd / "data" / "PetImages"
    # data/ itself holds one folder, PetImages: not a one-class data set named PetImages
    assert not usable(cwd / "data")
    pets = cwd / "data" / "PetImages"
    assert find_data_dir(None, candidates=[cwd / "data", pets]) == pets


def test_data_with_train_and_val_keeps_its_val(tmp_path):
    cwd, aistudio = tmp_path / "repo", tmp_path / "no-aistudio"
    make_kaggle_flat(cwd / "data" / "train", 3, size=16)
    make_kaggle_flat(cwd / "data" / "val", 2, size=16, start=100)
    found = resolve(cwd, aistudio)
    assert found == cwd / "data"  # not data/train, which would split train/ and leave val/ out
    assert resolve_splits(str(found))[1] == str(cwd / "data" / "val")
    (cwd / "data" / "val").rename(tmp_path / "elsewhere")  # only train/: the same photos either way
    assert counts(resolve(cwd, aistudio)) == {"cat": 3, "dog": 3}


def test_a_folder_with_one_class_is_passed_over(tmp_path):
    cwd, aistudio = tmp_path / "repo", tmp_path / "home" / "data"
    make_class_folders(cwd / "data" / "PetImages", 2, classes=("Cat",), size=16)  # Dog missing
    with pytest.raises(DataError, match="no photos found"):  # neither data/PetImages nor data/
        resolve(cwd, aistudio)
    # an AI Studio data set someone unzipped by hand: data<ID>/PetImages/{Cat,Dog}
    make_class_folders(aistudio / "data777" / "PetImages", 2, classes=("Cat", "Dog"), size=16)
    assert resolve(cwd, aistudio) == aistudio / "data777" / "PetImages"


def test_two_attached_one_class_data_sets_are_not_two_classes(tmp_path):
    cwd, aistudio = tmp_path / "repo", tmp_path / "home" / "data"
    make_kaggle_flat(aistudio / "data1", 2, size=16, classes=("cat",))
    make_kaggle_flat(aistudio / "data2", 2, size=16, classes=("dog",))
    with pytest.raises(DataError, match="no photos found"):  # not classes "data1" and "data2"
        resolve(cwd, aistudio)
    # without attached data sets, photos unzipped straight into the root still count
    root = tmp_path / "other" / "data"
    make_class_folders(root, 2, classes=("cat", "dog"), size=16)
    assert resolve(cwd, root) == root


@pytest.mark.parametrize("origin", ["the path given", ENV_VAR])
def test_a_given_one_class_folder_says_which_class(tmp_path, monkeypatch, origin):
    data = tmp_path / "data"
    make_class_folders(data / "PetImages", 2, classes=("Cat", "Dog"), size=16)
    make_kaggle_flat(tmp_path / "cats", 2, size=16, classes=("cat",))

    def given(path: Path) -> Optional[str]:
        if origin == ENV_VAR:
            monkeypatch.setenv(ENV_VAR, str(path))
            return None
        return str(path)
    with pytest.raises(DataError, match=r"data\): need images of at least 2 classes to train, found 1 "
                                        r"\(PetImages\); did you mean .*PetImages\?"):
        find_data_dir(given(data), candidates=[data / "PetImages"])  # given, so never skipped
    with pytest.raises(DataError, match=r"cats\): need images of at least 2 classes to train, "
                                        r"found 1 \(cat\)$"):
        find_data_dir(given(tmp_path / "cats"), candidates=[])


@pytest.mark.parametrize("make,name,inside", [
    (kaggle_zip, "train.zip", ""),  # the top: load_data then reads its train/
    (petimages_zip, "kagglecatsanddogs_5340.zip", "PetImages"),
])
def test_an_aistudio_zip_is_unpacked_once(tmp_path, monkeypatch, log_lines, make, name, inside):
    cwd, aistudio = tmp_path / "work", tmp_path / "home" / "data"
    cwd.mkdir()
    # Kaggle's unlabelled test1.zip sorts first: it is not a data set, so it stays packed
    test_image = make_kaggle_flat(tmp_path / "t", 1, size=16)[0]
    make_zip(aistudio / "data12345" / "test1.zip", {"test1/1.jpg": test_image})
    zip_path = make(aistudio / "data12345" / name, tmp_path / "src")
    dest = aistudio / "data12345" / (zip_path.stem + "_unzipped")

    found = resolve(cwd, aistudio)
    assert found == (dest / inside if inside else dest)
    assert set(counts(found).values()) in ({3}, {2}) and len(counts(found)) == 2
    assert not (dest / "__MACOSX").exists() and not (aistudio / "data12345" / "test1_unzipped").exists()
    unpacked = [line for line in log_lines() if "unpacking" in line]
    assert len(unpacked) == 1 and str(zip_path) in unpacked[0] and str(dest) in unpacked[0], log_lines()

    def fail(*args):
        raise AssertionError("unpacked a second time")
    monkeypatch.setattr(archive, "unpack", fail)
    assert resolve(cwd, aistudio) == found
    assert len([line for line in log_lines() if "unpacking" in line]) == 1


def test_an_interrupted_unpack_is_redone_and_a_new_zip_replaces_the_old(tmp_path, monkeypatch):
    cwd, aistudio = tmp_path / "work", tmp_path / "home" / "data"
    zip_path = kaggle_zip(aistudio / "data1" / "train.zip", tmp_path / "src")
    real_unpack = archive.unpack

    def killed(zip_file: Path, dest: Path):
        real_unpack(zip_file, dest)
        raise KeyboardInterrupt  # after the files, before the marker and the rename
    monkeypatch.setattr(archive, "unpack", killed)
    with pytest.raises(KeyboardInterrupt):
        resolve(cwd, aistudio)
    part = aistudio / "data1" / ".train_unzipped.part"
    assert part.is_dir() and not (aistudio / "data1" / "train_unzipped").exists()
    monkeypatch.setattr(archive, "unpack", real_unpack)
    found = resolve(cwd, aistudio)
    assert found == aistudio / "data1" / "train_unzipped" and not part.exists()
    assert counts(found) == {"cat": 3, "dog": 3}

    kaggle_zip(zip_path, tmp_path / "src2", n=4)  # a new version of the data set
    assert counts(resolve(cwd, aistudio)) == {"cat": 4, "dog": 4}


def test_an_unwritable_data_mount_unpacks_under_work(tmp_path, monkeypatch, log_lines):
    cwd, aistudio = tmp_path / "work" / "notebooks", tmp_path / "home" / "data"
    zip_path = petimages_zip(aistudio / "data9" / "kagglecatsanddogs_5340.zip", tmp_path / "src")
    real_writable = archive.writable
    monkeypatch.setattr(archive, "writable",  # as if the data set's mount were read-only
                        lambda folder: folder != zip_path.parent and real_writable(folder))
    found = resolve(cwd, aistudio)
    dest = tmp_path / "home" / "work" / "data9" / "kagglecatsanddogs_5340_unzipped"
    assert found == dest / "PetImages" and not (zip_path.parent / dest.name).exists()
    assert any(str(dest) in line for line in log_lines())
    assert resolve(cwd, aistudio) == found  # found again there, not unpacked again
    assert len([line for line in log_lines() if "unpacking" in line]) == 1


@pytest.mark.parametrize("evil", ["../evil.jpg", "/tmp/evil.jpg", "train/../../evil.jpg"])
def test_a_zip_member_outside_the_folder_is_refused(tmp_path, evil):
    cwd, aistudio = tmp_path / "work", tmp_path / "home" / "data"
    images = make_kaggle_flat(tmp_path / "src", 2, size=16)
    make_zip(aistudio / "data5" / "train.zip", {f"train/{p.name}": p for p in images}, {evil: b"x"})
    with pytest.raises(DataError, match="points outside"):
        resolve(cwd, aistudio)
    assert not (aistudio / "data5" / "evil.jpg").exists() and not (aistudio / "evil.jpg").exists()


def test_a_given_zip_says_to_unzip_it(tmp_path):
    zip_path = kaggle_zip(tmp_path / "train.zip", tmp_path / "src")
    with pytest.raises(DataError, match=r"the path given \(.*train.zip\) is a zip: unzip it"):
        find_data_dir(str(zip_path), candidates=[])
