"""Read a checkpoint trained with the official STG-NF code (a torch pickle) into numpy tensors.

The only module outside training that loads torch, and only when a checkpoint (not an ``.npz``) is
imported: ``weights_only=True`` with ``argparse.Namespace`` (the training arguments) as the one extra
type allowed; arbitrary unpickling only with ``trust_pickle``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge.scoring.architecture import ModelFormatError


def read_torch_checkpoint(path: Path, trust_pickle: bool) -> tuple[dict[str, np.ndarray], dict]:
    try:
        import torch
    except ImportError as e:
        raise RuntimeError("importing a checkpoint needs torch (pip install 'poselift-edge[train]'); "
                           "an .npz of the state_dict needs nothing") from e
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        if not trust_pickle:
            raise ModelFormatError(
                f"{path}: cannot be loaded as plain tensors ({str(e).splitlines()[0]}). If the file is truncated "
                "it must be fetched again; if it needs other Python objects and you trust it, use "
                "--trust-pickle") from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e2:
            raise ModelFormatError(f"{path}: not a readable torch checkpoint ({e2})") from None
    args = {}
    if isinstance(obj, dict) and "state_dict" in obj:
        raw_args = obj.get("args")
        if raw_args is not None:
            args = dict(vars(raw_args)) if hasattr(raw_args, "__dict__") else dict(raw_args)
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise ModelFormatError(f"{path}: holds neither a state_dict nor a checkpoint dict with 'state_dict'")
    tensors = {}
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise ModelFormatError(f"{path}: entry {name!r} is {type(value).__name__}, not a tensor")
        tensors[str(name)] = value.detach().cpu().to(torch.float32).numpy()
    if all(k.startswith("module.") for k in tensors):  # saved from a DataParallel wrapper
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors, args
