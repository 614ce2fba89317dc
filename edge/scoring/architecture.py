"""STG-NF architecture: configuration, the tensor names of its weights, and the skeleton graph.

Weights are kept under the names of the official implementation's ``state_dict`` (for example
``flow.layers.3.block.0.tcn.2.weight``), so checkpoints trained with that code import one-to-one and a
model directory can always be traced back to them.

Supported: the published configuration family, i.e. one level of ``n_steps`` flow steps, each ActNorm ->
channel reversal -> affine coupling whose conditioning network is a single ST-GCN unit (1 -> 2
channels, temporal kernel ``seg_len // 2 + 1`` unless given), uniform adjacency partition over the
OpenPose-18 graph with ``max_hops`` (8, the graph diameter, gives the all-``1/18`` matrix of the
released models), fixed Gaussian prior ``N(prior_mean, 1)``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

N_JOINTS = 18
IN_CHANNELS = 2
# OpenPose-18 bones (undirected); every joint also has a self-loop.
EDGES = ((4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1),
         (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14))
BN_EPS = 1e-5
SCALE_EPS = 1e-6  # added to the coupling scale (sigmoid + eps) and to the prior variance
ACTNORM_EPS = 1e-6


class ModelFormatError(ValueError):
    """A model file or weight set that cannot be used; the message names the file and the problem."""


class StgnfArchitecture(BaseModel):
    """Hyper-parameters that fix the network's shape and math."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seg_len: int = Field(24, description="Frames per window (T).", ge=4, le=512)
    n_steps: int = Field(8, description="Flow steps K (one level, no squeeze).", ge=1, le=64)
    temporal_kernel: int | None = Field(None, description="Temporal convolution length; None = seg_len // 2 + 1.")
    max_hops: int = Field(8, description="Neighbourhood of the uniform adjacency (8 = all joints).", ge=1, le=17)
    prior_mean: float = Field(3.0, description="Mean R of the Gaussian prior N(R, 1) on every latent element.")
    in_channels: Literal[2] = Field(2, description="Input channels (x, y).")
    n_joints: Literal[18] = Field(18, description="Joints per frame (OpenPose-18 order).")
    hidden_channels: Literal[0] = Field(0, description="Hidden width of the conditioning network (single unit).")
    permutation: Literal["reverse"] = Field("reverse", description="Channel permutation between steps.")
    coupling: Literal["affine"] = Field("affine", description="Coupling layer type.")

    @model_validator(mode="after")
    def _check(self):
        k = self.kernel
        if k < 1 or k % 2 == 0 or k > self.seg_len:
            raise ValueError(f"temporal_kernel must be odd and <= seg_len, got {k}")
        return self

    @property
    def kernel(self) -> int:
        return self.temporal_kernel if self.temporal_kernel is not None else self.seg_len // 2 + 1

    @property
    def dims(self) -> int:
        return self.in_channels * self.seg_len * self.n_joints


def hop_distance() -> np.ndarray:
    """Shortest-path hop counts between the 18 joints (Floyd-Warshall on 18 nodes)."""
    d = np.full((N_JOINTS, N_JOINTS), np.inf)
    np.fill_diagonal(d, 0)
    for i, j in EDGES:
        d[i, j] = d[j, i] = 1
    for k in range(N_JOINTS):
        d = np.minimum(d, d[:, k:k + 1] + d[k:k + 1, :])
    return d


def adjacency(max_hops: int) -> np.ndarray:
    """Column-normalised reachability ``A[v, w]`` (aggregation ``g'[w] = sum_v g[v] A[v, w]``).

    Built in float64 and rounded to float32, as the published models use it: with max_hops = 8 every
    entry is float32(1/18), and using exactly 1/18 instead moves NLL by about 1e-5 bits/dim.
    """
    reach = (hop_distance() <= max_hops).astype(np.float64)
    return (reach / reach.sum(axis=0, keepdims=True)).astype(np.float32)


def _bn(prefix: str) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{n}": (2,) for n in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()}


def expected_tensors(arch: StgnfArchitecture) -> dict[str, tuple[int, ...]]:
    """Every weight name the architecture needs, with its shape, in state_dict order."""
    c2, t, v = 2 * arch.in_channels, arch.seg_len, arch.n_joints
    out: dict[str, tuple[int, ...]] = {"prior_h": (1, c2, t, v), "prior_h_normal": (c2, t, v),
                                       "prior_h_abnormal": (c2, t, v)}
    for k in range(arch.n_steps):
        p = f"flow.layers.{k}."
        out[p + "actnorm.bias"] = (1, 2, 1, 1)
        out[p + "actnorm.logs"] = (1, 2, 1, 1)
        b = p + "block.0."
        out[b + "gcn.conv.weight"] = (2, 1, 1, 1)
        out[b + "gcn.conv.bias"] = (2,)
        out |= _bn(b + "tcn.0")
        out[b + "tcn.2.weight"] = (2, 2, arch.kernel, 1)
        out[b + "tcn.2.bias"] = (2,)
        out |= _bn(b + "tcn.3")
        if k > 0:
            out[b + "residual.0.weight"] = (2, 1, 1, 1)
            out[b + "residual.0.bias"] = (2,)
            out |= _bn(b + "residual.1")
    return out


def infer_architecture(tensors: dict, *, max_hops: int = 8, temporal_kernel: int | None = None
                       ) -> StgnfArchitecture:
    """Architecture implied by a weight set's shapes (seg_len, steps, kernel, prior mean).

    ``max_hops`` leaves no trace in the weights, so it is taken as given.
    """
    if "prior_h_normal" not in tensors:
        raise ModelFormatError("weights have no 'prior_h_normal' tensor: not an STG-NF state_dict")
    prior = np.asarray(tensors["prior_h_normal"], dtype=np.float64)
    if prior.ndim != 3 or prior.shape[0] != 4 or prior.shape[2] != N_JOINTS:
        raise ModelFormatError(f"prior_h_normal has shape {prior.shape}, expected (4, T, 18)")
    steps = 0
    while f"flow.layers.{steps}.actnorm.bias" in tensors:
        steps += 1
    if steps == 0:
        raise ModelFormatError("weights have no flow.layers.0.actnorm.bias: not an STG-NF state_dict")
    tw = tensors.get("flow.layers.0.block.0.tcn.2.weight")
    kernel = int(np.shape(tw)[2]) if tw is not None and np.ndim(tw) == 4 else temporal_kernel
    seg_len = int(prior.shape[1])
    mean = float(prior[0, 0, 0])
    try:
        return StgnfArchitecture(seg_len=seg_len, n_steps=steps, max_hops=max_hops, prior_mean=mean,
                                 temporal_kernel=None if kernel == seg_len // 2 + 1 else kernel)
    except ValueError as e:
        raise ModelFormatError(f"weights imply an unsupported architecture: {e}") from None


def check_tensors(tensors: dict, arch: StgnfArchitecture, source: str) -> dict[str, np.ndarray]:
    """Validate a weight set against ``arch``; returns float32 arrays. Raises :class:`ModelFormatError`
    naming ``source`` and listing every missing, unknown, misshapen or non-finite tensor."""
    want = expected_tensors(arch)
    missing = [n for n in want if n not in tensors]
    unknown = sorted(n for n in tensors if n not in want)
    problems = []
    if missing:
        problems.append(f"missing tensors: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown tensors (not part of this architecture): {', '.join(unknown)}")
    out: dict[str, np.ndarray] = {}
    for name, shape in want.items():
        if name not in tensors:
            continue
        try:
            a = np.asarray(tensors[name], dtype=np.float32)
        except (TypeError, ValueError) as e:
            problems.append(f"{name}: not numeric ({e})")
            continue
        if a.shape != shape:
            problems.append(f"{name}: shape {a.shape}, expected {shape}")
        elif not np.isfinite(a).all():
            problems.append(f"{name}: contains NaN or infinity")
        elif name.endswith("running_var") and (a < 0).any():
            problems.append(f"{name}: negative variance")
        out[name] = np.array(a, dtype=np.float32, order="C")  # keeps 0-d shapes
    if not problems:
        pn = out["prior_h_normal"]
        ok = np.allclose(pn[:2], arch.prior_mean) and np.all(pn[2:] == 0)
        if not ok:
            problems.append("prior_h_normal is not (+R everywhere, log-std 0): unsupported prior")
    if problems:
        raise ModelFormatError(f"{source}: " + "; ".join(problems))
    return out
