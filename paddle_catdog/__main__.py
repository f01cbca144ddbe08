"""``python -m paddle_catdog COMMAND``: train, predict, evaluate, export or data."""
import sys

from paddle_catdog.launch import main

sys.exit(main())
