"""Replay fixtures (defined in tests/support/replay_support.py, shared with the CLI tests)."""

from support.replay_support import llm_window, plain_server  # noqa: F401
