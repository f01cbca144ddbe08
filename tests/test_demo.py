"""The demo page (paddle_catdog/demo/): its answers agree with run_predict.py, every bad upload
gets a message and the next request is still served, and the page works in a real browser
(Debian's chromium, driven by Selenium)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, make_kaggle_flat, png_bomb, run_cli, tiny_config
from test_photos import jpeg_with_orientation
from paddle_catdog.cli import predict_main
from paddle_catdog.demo.service import MAX_UPLOAD_BYTES, DemoService, bilingual
from paddle_catdog.train import fit


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A plain CNN trained for one epoch on generated photos, and the photos of its val/."""
    root = tmp_path_factory.mktemp("demo")
    make_kaggle_flat(root / "data" / "train", 16, seed=1)
    val = make_kaggle_flat(root / "data" / "val", 4, seed=2, start=1000)
    best = fit(tiny_config(root / "data", root / "out", log_images=False))
    return best, sorted(str(p) for p in val)


def predicted_label(best, path):
    code, out, _ = run_cli(predict_main, "--img", path, "--weights", str(best), "--json")
    assert code == 0
    return json.loads(out.splitlines()[0])["label"]


def phone_photo() -> bytes:
    """A 40-megapixel JPEG (7744 x 5184) stored on its side with EXIF orientation 6: a viewer,
    and the decoder, turn it upright (5184 wide, 7744 high)."""
    h, w = 5184, 7744
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    rgb = np.stack([ramp, ramp[::-1], np.full_like(ramp, 90)], axis=2).astype(np.uint8)
    return jpeg_with_orientation(np.rot90(rgb, 1), 6)


def bad_uploads(good: bytes):
    return {"text renamed .jpg": b"this is not a photo\n" * 10,
            "truncated JPEG": good[: len(good) // 2],
            "decompression bomb": png_bomb(),
            "0-byte upload": b"",
            "over the size cap": b"\xff\xd8" + b"\0" * (MAX_UPLOAD_BYTES + 1)}


def test_answers_agree_with_run_predict_and_bad_uploads_get_messages_100_in_a_row(trained):
    best, photos = trained
    service = DemoService(str(best))
    expected = {p: predicted_label(best, p) for p in photos}
    good = [(p, Path(p).read_bytes()) for p in photos]
    bad = bad_uploads(good[0][1])
    mixed = [("good", p, data) for p, data in good] + [("bad", name, data) for name, data in bad.items()]
    for i in range(100):  # good and bad alternate; the service never raises and never stops
        kind, name, data = mixed[i % len(mixed)]
        answer = service.classify(data, name)
        if kind == "good":
            assert answer.error is None and answer.label == expected[name], (i, name)
            assert abs(sum(answer.probabilities.values()) - 1) < 1e-5
            assert answer.overlay is not None and answer.overlay.shape == (256, 256, 3)
        else:
            assert answer.label is None and answer.error, (i, name)
            assert "/" in answer.error  # Chinese and English
    assert "image too large" in service.classify(bad["decompression bomb"]).error
    assert "empty" in service.classify(b"").error
    assert "file too large" in service.classify(bad["over the size cap"]).error


def test_a_40_megapixel_phone_photo_is_answered_upright(trained):
    best, _ = trained
    service = DemoService(str(best))
    data = phone_photo()
    assert len(data) < MAX_UPLOAD_BYTES
    answer = service.classify(data)
    assert answer.error is None and answer.label in ("cat", "dog")
    upright = service.predictor.transform(data)
    sideways = service.predictor.transform(cv2.imencode(".jpg", cv2.imdecode(
        np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION))[1].tobytes())
    assert np.abs(upright - sideways).mean() > 0.1  # the orientation was applied


def test_the_page_answers_several_photos_with_bars_table_and_overlays(trained):
    pytest.importorskip("gradio", reason="the demo extra is not installed: pip install -e '.[demo]'")
    from paddle_catdog.demo.app import answer_uploads
    best, photos = trained
    service = DemoService(str(best))
    uploads = [Path(photos[0]).read_bytes(), b"not a photo", Path(photos[1]).read_bytes()]
    bars, table, gallery = answer_uploads(service, uploads)
    first = service.classify(uploads[0])
    assert bars == {bilingual(c): p for c, p in first.probabilities.items()}
    assert table.count("\n| #") == 3 and "⚠️" in table.splitlines()[3]
    assert [caption.split(":")[0] for _, caption in gallery] == ["#1", "#3"]
    assert answer_uploads(service, None)[1].startswith("请先上传")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser_missing():
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        return "no chromium/chromedriver (Debian: apt-get install chromium chromium-driver)"
    for module in ("selenium", "gradio"):
        try:
            __import__(module)
        except ImportError:
            return f"no {module} (pip install -e '.[demo,test]')"
    return None


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_the_page_in_a_real_browser(trained, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    best, photos = trained
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    server = subprocess.Popen([sys.executable, "-m", "paddle_catdog", "demo", "--weights", str(best),
                               "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1400"):
        options.add_argument(flag)
    driver = None
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        driver = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 60)
        upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#photos input[type=file]"))
        upload.send_keys(photos[0])
        results = lambda d: d.find_element(By.ID, "results").text  # noqa: E731
        wait.until(lambda d: "#1" in results(d))
        shown = results(driver)
        assert bilingual(predicted_label(best, photos[0])) in shown, shown
        driver.save_screenshot(str(tmp_path / "demo.png"))
        assert (tmp_path / "demo.png").stat().st_size > 10_000
        bad = tmp_path / "not_a_photo.jpg"
        bad.write_text("this is not a photo\n")
        driver.find_element(By.CSS_SELECTOR, "#photos button[aria-label='Clear']").click() \
            if driver.find_elements(By.CSS_SELECTOR, "#photos button[aria-label='Clear']") else None
        upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#photos input[type=file]"))
        upload.send_keys(str(bad))
        wait.until(lambda d: "not a usable image" in results(d))
        assert server.poll() is None  # still serving
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)
