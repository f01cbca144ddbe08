"""The demo page as an AI Studio app (应用). AI Studio runs this file, app.gradio.py at the
project's root, with ``python app.gradio.py``; the page is the ``demo`` object it builds. The
weights are ``$CATDOG_WEIGHTS`` or the newest ``output/*/best`` (train first, or upload a
checkpoint folder). Locally, ``catdog-demo`` serves the same page (README: "Demo page")."""
import os

from paddle_catdog.process import quiet_process
from paddle_catdog.checkpoint import find_default_weights
from paddle_catdog.demo.app import build_app
from paddle_catdog.demo.service import MAX_UPLOAD_BYTES, DemoService

quiet_process()  # Paddle's and OpenCV's logs, as the commands have them
demo = build_app(DemoService(os.environ.get("CATDOG_WEIGHTS") or str(find_default_weights())))

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1).launch(max_file_size=MAX_UPLOAD_BYTES)
