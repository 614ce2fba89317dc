"""Window scorer: NLL in bits per dimension (higher = more anomalous), batch-independent.

Two backends compute the same function from the same model directory:

* ``numpy`` (default): :class:`~edge.scoring.flow_numpy.NumpyFlow` on ``weights.npz``. Needs only
  numpy; a scoring process peaks at about 65 MB (bench/bench_scoring.py).
* ``onnxruntime``: ``stgnf.onnx`` in ONNX Runtime (the ``ort`` extra), faster at every batch size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.scoring.architecture import ModelFormatError
from edge.scoring.card import ModelCard
from edge.scoring.model_io import ONNX_FILE, load_weights, read_card, verify_file

BACKENDS = ("numpy", "onnxruntime")


class Scorer:
    """Scores normalised windows ``(N, 2, seg_len, 18)`` with one model."""

    def __init__(self, card: ModelCard, backend: str, run, max_batch: int = 256, flow=None):
        self.card = card
        self.backend = backend
        self.max_batch = int(max_batch)
        self._run = run
        self._flow = flow

    def _check(self, x) -> np.ndarray:
        a = np.asarray(x)
        shape = (2, self.card.seg_len, self.card.architecture.n_joints)
        if a.ndim != 4 or a.shape[1:] != shape:
            raise ValueError(f"windows must have shape (N, {', '.join(map(str, shape))}), got {a.shape}")
        if not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"windows must be numeric, got dtype {a.dtype}")
        a = np.ascontiguousarray(a, dtype=np.float32)
        if not np.isfinite(a).all():
            bad = np.flatnonzero(~np.isfinite(a).reshape(len(a), -1).all(axis=1))
            raise ValueError(f"windows {bad[:10].tolist()} contain NaN or infinity")
        return a

    def score(self, x) -> np.ndarray:
        """NLL (bits/dim) per window, float32 ``(N,)``."""
        a = self._check(x)
        if len(a) == 0:
            return np.zeros(0, dtype=np.float32)
        parts = [self._run(a[i:i + self.max_batch]) for i in range(0, len(a), self.max_batch)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def forward(self, x, *, steps: bool = False):
        """Full numpy forward pass (latent, log-det, optionally every step); numpy backend only."""
        if self._flow is None:
            raise RuntimeError("forward() with intermediates needs the numpy backend")
        return self._flow.forward(self._check(x), steps=steps)


def load_scorer(model_dir, backend: str = "numpy", *, max_batch: int = 256, threads: int | None = None,
                dtype=np.float32) -> Scorer:
    """Open a model directory (see :mod:`edge.scoring.model_io`) for scoring.

    Raises :class:`ModelFormatError` naming the file and the problem for a missing, truncated,
    tampered or misshapen model.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown scorer backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    card = read_card(model_dir)
    if backend == "numpy":
        from edge.scoring.flow_numpy import NumpyFlow

        _, weights = load_weights(model_dir, card)
        flow = NumpyFlow(weights, card.architecture, dtype=dtype)
        return Scorer(card, "numpy", lambda a: flow.forward(a).nll, max_batch, flow)
    path = verify_file(model_dir, card, ONNX_FILE)
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise RuntimeError("backend 'onnxruntime' needs the onnxruntime package "
                           "(pip install 'poselift-edge[ort]'); the numpy backend needs nothing else") from e
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for a malformed graph
        raise ModelFormatError(f"{Path(path)}: ONNX Runtime cannot load it ({e})") from None
    names = [i.name for i in sess.get_inputs()]
    if names != ["x"] or "nll" not in [o.name for o in sess.get_outputs()]:
        raise ModelFormatError(f"{path}: expected input 'x' and output 'nll', found inputs {names}")
    return Scorer(card, "onnxruntime", lambda a: sess.run(["nll"], {"x": a})[0], max_batch)
