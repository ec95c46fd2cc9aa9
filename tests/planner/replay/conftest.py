"""Replay fixtures (defined in tests/replay_support.py, shared with the CLI tests)."""

from replay_support import llm_window, plain_server  # noqa: F401
