"""Shared test setup: keep every test away from the user's real run store and keys."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_user_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test gets its own run store, and no OPENAI_API_KEY leaks in from the shell."""
    home = tmp_path_factory.mktemp("fanout-home")
    monkeypatch.setenv("FANOUT_STORE", str(Path(home) / "runs.sqlite3"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
