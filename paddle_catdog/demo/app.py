"""The demo page in Gradio: drop or pick one photo or several; the page shows each one's label,
the probabilities as bars (the first photo), the Grad-CAM overlays and the time taken, in Chinese
and English. Its API endpoint ``/classify`` takes the same files (README: ``gradio_client``)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import gradio as gr
import numpy as np

from .service import MAX_UPLOAD_BYTES, Answer, DemoService, bilingual

TITLE = "猫还是狗？ Cat or dog?"
INTRO = ("上传一张或几张照片，模型给出类别、概率，以及它看的地方（Grad-CAM）。\n\n"
         "Drop or pick one or more photos: the model gives the class, the probabilities and where "
         "it looked (Grad-CAM).")
TABLE_HEAD = "| 照片 photo | 类别 label | 概率 probability | 用时 time |\n|---|---|---|---|\n"


def answer_uploads(service: DemoService, uploads: Optional[Sequence[bytes]]
                   ) -> Tuple[Dict[str, float], str, List[Tuple[np.ndarray, str]]]:
    """(probability bars of the first good photo, the results table, the overlays) for the
    uploaded files' bytes, in upload order."""
    if not uploads:
        return {}, "请先上传照片 / upload a photo first", []
    answers: List[Answer] = [service.classify(data, f"#{i + 1}") for i, data in enumerate(uploads)]
    good = [a for a in answers if a.error is None]
    bars = {bilingual(c): p for c, p in good[0].probabilities.items()} if good else {}
    gallery = [(a.overlay, f"{a.name}: {bilingual(a.label)}") for a in good if a.overlay is not None]
    return bars, TABLE_HEAD + "\n".join(a.line() for a in answers), gallery


def build_app(service: DemoService) -> gr.Blocks:
    """The page, served by ``app.launch`` (command.py) or as an AI Studio app (app.gradio.py)."""
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="照片 photos", file_count="multiple", type="binary",
                                file_types=["image"], elem_id="photos")
                button = gr.Button("识别 Classify", variant="primary", elem_id="classify")
            with gr.Column():
                bars = gr.Label(label="概率 probabilities", elem_id="bars")
                table = gr.Markdown(elem_id="results")
        gallery = gr.Gallery(label="Grad-CAM：网络看的地方 / where the network looked", columns=4,
                             height="auto", elem_id="gradcam")
        run = lambda uploads: answer_uploads(service, uploads)  # noqa: E731
        button.click(run, inputs=files, outputs=[bars, table, gallery], api_name="classify")
        files.upload(run, inputs=files, outputs=[bars, table, gallery], api_name=False)
    return app


def launch(app: gr.Blocks, host: str, port: int, share: bool) -> None:
    """Serve ``app``: uploads over MAX_UPLOAD_BYTES are refused by the server itself."""
    app.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, share=share, max_file_size=MAX_UPLOAD_BYTES,
        show_error=False, inbrowser=False)
