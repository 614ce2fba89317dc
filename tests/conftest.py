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


def renormalized_copy(model_dir: Path, dest: Path, method: str) -> Path:
    """A copy of a model directory whose card asks for another window normalisation."""
    import shutil

    from edge.scoring.model_io import read_card, write_card

    shutil.copytree(model_dir, dest)
    card = read_card(dest)
    card.normalization = card.normalization.model_copy(update={"method": method})
    write_card(dest, card)
    return dest
