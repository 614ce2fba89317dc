"""``poselift-edge score``: NLL (bits/dim) of normalised windows stored in an .npz."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("score", help="score normalized windows (NLL in bits/dim)",
                       description="Score the windows stored under key 'x' (N, 2, T, 18) of an .npz and write "
                                   "the per-window NLL in bits per dimension (higher = more anomalous) as .npy. "
                                   "The windows must be normalised the way the model card says "
                                   "(normalization.method; `model info` prints it).")
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument("--windows", required=True, help=".npz with key 'x'")
    p.add_argument("--out", required=True, help=".npy to write (float32, one NLL per window)")
    p.add_argument("--backend", choices=("numpy", "onnxruntime"), default="numpy", help="scorer (default numpy)")
    p.set_defaults(func=_run)


def _read_windows(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError(f"{path}: not an .npz archive")
            if "x" not in z.files:
                keys = ", ".join(z.files[:10]) + (f" and {len(z.files) - 10} more" if len(z.files) > 10 else "")
                raise ValueError(f"{path}: no key 'x' (keys: {keys or 'none'})")
            return z["x"]
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path}: unreadable .npz ({e})") from None


def _run(args) -> int:
    from edge.scoring import ModelFormatError, load_scorer

    try:
        scorer = load_scorer(args.model, backend=args.backend)
        x = _read_windows(Path(args.windows))
        try:
            nll = scorer.score(x)
        except ValueError as e:
            raise ValueError(f"{args.windows}: key 'x': {e}") from None
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, nll)
    except (ModelFormatError, ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"scored {len(nll)} windows: NLL {float(nll.min()) if len(nll) else 0:.3f} .. "
          f"{float(nll.max()) if len(nll) else 0:.3f} bits/dim -> {args.out} "
          f"(model normalisation {scorer.card.window_normalization})")
    return 0
