"""Import weights trained with the official STG-NF implementation.

Sources: an ``.npz`` of its ``state_dict`` (tensor names as in the state_dict), or one of its
checkpoints (``.tar`` / ``.pth.tar`` / ``.pth``: a torch pickle of ``{'epoch', 'state_dict', 'optimizer',
'args'}`` or a bare state_dict). Checkpoints need torch (the ``train`` extra) and are read by
:mod:`edge.scoring.trained_checkpoint`, loaded only when a checkpoint is imported. A file that needs
arbitrary unpickling is refused unless ``trust_pickle`` is given for a file you trust.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edge.scoring.architecture import ModelFormatError, StgnfArchitecture, infer_architecture
from edge.scoring.card import ModelCard, TrainingInfo, sha256_file
from edge.scoring.model_io import save_model

# Training arguments of the official code that this implementation cannot reproduce, with the value it
# supports.
_ARG_SUPPORT = {"L": 1, "hidden_channels": 0, "edge_importance": False, "model_confidence": False}


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelFormatError(f"{path}: not a readable .npz of tensors ({e})") from None


def _arch_from(tensors: dict, args: dict, max_hops: int | None, source: str) -> StgnfArchitecture:
    bad = [f"{k}={args[k]!r} (supported: {v!r})" for k, v in _ARG_SUPPORT.items()
           if k in args and args[k] is not None and args[k] != v]
    if bad:
        raise ModelFormatError(f"{source}: trained with settings this scorer does not implement: {', '.join(bad)}")
    perm = args.get("flow_permutation")
    if perm not in (None, "permute", "invcov"):
        raise ModelFormatError(f"{source}: flow_permutation {perm!r} is not supported (only the channel "
                               "reversal 'permute'; 'shuffle' indices are not stored in checkpoints)")
    hops = max_hops if max_hops is not None else int(args.get("max_hops") or 8)
    arch = infer_architecture(tensors, max_hops=hops)
    if args.get("seg_len") not in (None, arch.seg_len):
        raise ModelFormatError(f"{source}: args say seg_len {args['seg_len']} but the weights have {arch.seg_len}")
    return arch


def import_stgnf(path, out_dir, *, max_hops: int | None = None, divisors=(856.0, 480.0),
                 trust_pickle: bool = False) -> ModelCard:
    """Import official STG-NF weights from ``path`` into a new model directory ``out_dir``."""
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError(f"{p}: file not found")
    if p.suffix == ".npz":
        tensors, args = _read_npz(p), {}
    else:
        from edge.scoring.trained_checkpoint import read_torch_checkpoint  # the one place torch is loaded

        tensors, args = read_torch_checkpoint(p, trust_pickle)
    arch = _arch_from(tensors, args, max_hops, str(p))
    metrics = {k: args[k] for k in ("epochs", "seed", "dataset", "model_lr", "batch_size") if k in args}
    info = TrainingInfo(source="imported", imported_from=p.name, imported_sha256=sha256_file(p), metrics=metrics)
    try:
        return save_model(out_dir, tensors, arch, divisors=divisors, training=info, name=p.stem)
    except ModelFormatError as e:
        raise ModelFormatError(str(e).replace("weights: ", f"{p}: ", 1)) from None
