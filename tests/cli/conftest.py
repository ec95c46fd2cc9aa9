"""CLI fixtures: the replay tests' plain HTTP server and trace windows (tests/replay_support.py)."""

from replay_support import llm_window, plain_server  # noqa: F401
