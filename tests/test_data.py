"""Downloading the archive: against a zip served by a local HTTP server (127.0.0.1), never the web."""
import io
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import make_class_folders
from paddle_catdog.data import download as data
from paddle_catdog.cli import data_main, train_main
from paddle_catdog.data.layouts import DataError

NAME = "kagglecatsanddogs_test.zip"


def petimages_zip(tmp_path) -> bytes:
    """A small PetImages-like archive: Cat/ and Dog/ with 6 pictures each, one empty and one
    garbage file, and the licence file the real one has beside the folder."""
    src = tmp_path / "src"
    make_class_folders(src / "PetImages", 6, classes=("Cat", "Dog"), size=32, ext=".jpg")
    (src / "PetImages" / "Cat" / "666.jpg").write_bytes(b"")
    (src / "PetImages" / "Dog" / "11702.jpg").write_bytes(b"not a jpeg at all" * 50)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # stored: big enough to split
        z.writestr("CDLA-Permissive-2.0.pdf", b"licence")
        for f in sorted(src.rglob("*.jpg")):
            z.write(f, f.relative_to(src).as_posix())
    return buf.getvalue()


class Server:
    """Serves ``payload`` with Range support; ``cut`` stops a response after that many bytes
    (a dropped connection); ``ranges`` records the Range headers received."""

    def __init__(self, payload: bytes):
        self.payload, self.cut, self.ranges, self.sent = payload, None, [], 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                start = 0
                header = self.headers.get("Range")
                server.ranges.append(header)
                if header:
                    start = int(header.split("=")[1].split("-")[0])
                    if start >= len(server.payload):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut is not None:
                    body = body[:server.cut]
                # counted before writing: the client may finish (and the test read ``sent``)
                # before this thread runs again after the write
                server.sent += len(body)
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files/{NAME}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    s = Server(petimages_zip(tmp_path))
    yield s
    s.close()


def test_download_checks_unpacks_and_removes_bad_files(tmp_path, server):
    dest = tmp_path / "data"
    root = data.prepare(server.url, str(dest), progress=False)
    assert root == dest / "PetImages"
    assert sorted(p.name for p in root.iterdir()) == ["Cat", "Dog", "removed.txt"]
    removed = (root / "removed.txt").read_text()
    assert "666.jpg\tempty file" in removed and "11702.jpg" in removed
    assert not (root / "Cat" / "666.jpg").exists() and not (root / "Dog" / "11702.jpg").exists()
    assert len(list((root / "Cat").glob("*.jpg"))) == 6 and not (dest / NAME).exists()
    server.close()  # prepared once: a second call needs no network
    assert data.prepare(server.url, str(dest), progress=False) == root


def test_partial_download_is_resumed_with_a_range_request(tmp_path, server):
    dest = tmp_path / "data"
    half = len(server.payload) // 2
    server.cut = half  # the first attempt drops the connection half way
    with pytest.raises(DataError, match="run the same command again to resume"):
        data.download_file(server.url, dest / NAME, progress=False)
    assert (dest / f"{NAME}.part").stat().st_size == half and not (dest / NAME).exists()
    server.cut, server.sent = None, 0
    data.download_file(server.url, dest / NAME, progress=False)
    assert server.ranges == [None, f"bytes={half}-"]
    assert server.sent == len(server.payload) - half  # only the missing half was sent again
    assert (dest / NAME).read_bytes() == server.payload
    data.check_archive(dest / NAME)


def test_corrupt_archive_and_wrong_checksum_are_caught(tmp_path, server):
    path = tmp_path / NAME
    path.write_bytes(server.payload)
    with pytest.raises(DataError, match="SHA-256"):
        data.check_archive(path, sha256="0" * 64)
    data.check_archive(path, sha256=data.sha256_of(path))
    damaged = bytearray(server.payload)
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte inside a stored member
    path.write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="corrupt|not a complete zip"):
        data.check_archive(path)
    path.write_bytes(server.payload[: len(server.payload) // 2])
    with pytest.raises(DataError, match="not a complete zip"):
        data.check_archive(path)


def test_offline_is_one_line_saying_where_to_put_the_data(tmp_path, capsys):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.time()
    code = data_main(["download", "--url", f"http://127.0.0.1:{port}/{NAME}", "--dest",
                      str(tmp_path / "d"), "--no-progress"])
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error:")]
    assert code == 2 and time.time() - start < 5
    assert len(err) == 1 and "unpack it into" in err[0] and str(tmp_path / "d") in err[0], err


def test_no_data_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CATDOG_DATA", raising=False)  # the resolver would find the shared photos
    assert train_main(["--no-progress"]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error:")]
    assert len(err) == 1 and "--download" in err[0] and "kaggle.com" in err[0], err


def test_run_train_download_flag_then_trains(tmp_path, server, monkeypatch):
    monkeypatch.setattr(data, "PETIMAGES_URL", server.url)
    monkeypatch.chdir(tmp_path)  # the default destination is ./data
    code = train_main(["--download", "--model", "cnn", "--image-size", "32", "--epochs", "1",
                       "--batch-size", "4", "--num-workers", "0", "--no-progress",
                       "--no-log-images", "--val-split", "0.34", "--output", str(tmp_path / "out")])
    assert code == 0
    assert (tmp_path / "data" / "PetImages" / "Cat").is_dir()
    assert (tmp_path / "out" / "best" / "meta.json").is_file()
