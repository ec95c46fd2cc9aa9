"""CLI fixtures: the replay tests' plain HTTP server and trace windows (tests/support/replay_support.py)."""

from support.replay_support import llm_window, plain_server  # noqa: F401
