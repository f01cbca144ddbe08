"""The demo page (``catdog-demo``; the ``demo`` extra): ``service.py`` answers uploads without any
web code, ``app.py`` builds the Gradio page on it, ``command.py`` is the command line."""
