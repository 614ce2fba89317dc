"""Store simulator: generated PoseLift-format datasets of shoppers and shoplifters (the embedded default).

``simulate_dataset(out, seed=0, scale="small" | "paper")`` writes ``out/Pickle_files/{Train,Test,GT}``.
Modules: :mod:`body` (articulated COCO-17 body), :mod:`camera` (six ceiling cameras and their aisles),
:mod:`behaviours` (shopping and concealment actions), :mod:`noise` (detector and tracker imperfections),
:mod:`scene` (one video), :mod:`dataset` (plans per scale, writing).
"""

from __future__ import annotations

__all__ = ["simulate_dataset"]


def simulate_dataset(out, **kw):
    """See :func:`edge.simulate.dataset.simulate_dataset`."""
    from edge.simulate.dataset import simulate_dataset as _run

    return _run(out, **kw)
