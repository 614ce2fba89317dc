"""Shared test fixtures. Reference data lives in ../shared (read in place, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__import__("os").environ.get("POSELIFT_SHARED", ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path inside ../shared; skips the test, saying so plainly, when the reference data is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"reference data not found: {p} (the ../shared folder beside the checkout is absent)")
    return p


@pytest.fixture
def shared():
    return shared_path
