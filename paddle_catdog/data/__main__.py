"""``python -m paddle_catdog.data download``: the same command as ``catdog-data``."""
import sys

from paddle_catdog.cli import data_main

sys.exit(data_main())
