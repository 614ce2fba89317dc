"""Training STG-NF with PyTorch (the ``train`` extra). Nothing on the device imports this module.

The torch module mirrors :mod:`edge.scoring.flow_numpy` operation for operation, but unfolded and
with BatchNorm in training mode, and its parameters carry the official implementation's state_dict
names, so a trained model and an imported one are the same thing on disk.

Recipe (the published one): ActNorm initialised from the first batch, Adamax (lr 5e-4, betas 0.9 /
0.999), loss = mean NLL in bits/dim, gradient norm clipped at 100, learning rate 0.99x per epoch,
identity + flipped windows.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edge.scoring.architecture import ACTNORM_EPS, BN_EPS, SCALE_EPS, StgnfArchitecture, adjacency
from edge.windowing.stgnf import DETRENDED

_LOG_2PI = math.log(2.0 * math.pi)


class _ActNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 2, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, 2, 1, 1))
        self.initialised = False  # not part of the state_dict, like the official code

    @torch.no_grad()
    def _init_from(self, x: torch.Tensor) -> None:
        bias = -x.mean(dim=(0, 2, 3), keepdim=True)
        std = ((x + bias) ** 2).mean(dim=(0, 2, 3), keepdim=True).sqrt()
        self.bias.copy_(bias)
        self.logs.copy_(torch.log(1.0 / (std + ACTNORM_EPS)))
        self.initialised = True

    def forward(self, x):
        if not self.initialised:
            if not self.training:
                raise RuntimeError("ActNorm used in eval mode before initialisation or loading weights")
            self._init_from(x)
        y = (x + self.bias) * torch.exp(self.logs)
        return y, x.shape[2] * x.shape[3] * self.logs.sum()


class _Gcn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=1)


def _batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor, count: int) -> torch.Tensor:
    """BatchNorm of ``x``; in training mode the running variance is updated as if the batch had
    ``count`` values per channel (``x`` may hold a joint-broadcast tensor with V collapsed to 1)."""
    if not bn.training:
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    y = F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    with torch.no_grad():
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False) * (count / max(count - 1, 1))
        bn.running_mean.mul_(1 - bn.momentum).add_(bn.momentum * mean)
        bn.running_var.mul_(1 - bn.momentum).add_(bn.momentum * var)
        bn.num_batches_tracked += 1
    return y


class _Unit(nn.Module):
    """One ST-GCN unit, 1 -> 2 channels: graph aggregation, BN, ReLU, temporal conv, BN, (+residual), ReLU.

    With the uniform adjacency the aggregated values are equal for every joint, so that branch runs
    on ``(N, 2, T, 1)`` (18x less work) and is broadcast when the residual is added."""

    def __init__(self, kernel: int, residual: bool):
        super().__init__()
        self.gcn = _Gcn()
        self.tcn = nn.Sequential(nn.BatchNorm2d(2, eps=BN_EPS), nn.ReLU(),
                                 nn.Conv2d(2, 2, (kernel, 1), padding=((kernel - 1) // 2, 0)),
                                 nn.BatchNorm2d(2, eps=BN_EPS))
        self.residual = nn.Sequential(nn.Conv2d(1, 2, kernel_size=1), nn.BatchNorm2d(2, eps=BN_EPS)) if residual else None

    def forward(self, u, A, uniform: bool):
        n, _, t, v = u.shape
        conv = self.gcn.conv
        # 1x1 convolutions from one channel are a broadcast multiply-add (much cheaper to back-propagate)
        w, b = conv.weight.view(1, 2, 1, 1), conv.bias.view(1, 2, 1, 1)
        if uniform:
            g = (u.sum(dim=3, keepdim=True) * A[0, 0]) * w + b * A[:, 0].sum()  # (N, 2, T, 1)
        else:
            g = torch.matmul(u * w + b, A)  # g'[w] = sum_v g[v] A[v, w]
        count = n * t * v
        h = torch.relu(_batch_norm(self.tcn[0], g, count))
        tconv = self.tcn[2]
        if uniform:
            h = F.conv1d(h[..., 0], tconv.weight[..., 0], tconv.bias, padding=tconv.padding[0])[..., None]
        else:
            h = tconv(h)
        h = _batch_norm(self.tcn[3], h, count)
        if self.residual is not None:
            rc, rbn = self.residual[0], self.residual[1]
            h = h + rbn(u * rc.weight.view(1, 2, 1, 1) + rc.bias.view(1, 2, 1, 1))
        return torch.relu(h).expand(n, 2, t, v)


class _Step(nn.Module):
    def __init__(self, kernel: int, first: bool):
        super().__init__()
        self.actnorm = _ActNorm()
        self.block = nn.ModuleList([_Unit(kernel, residual=not first)])

    def forward(self, z, A, uniform: bool):
        z, ld = self.actnorm(z)
        z1, z2 = z[:, 1:2], z[:, 0:1]  # channel reversal, then halves
        h = self.block[0](z1, A, uniform)
        shift, raw = h[:, 0::2], h[:, 1::2]
        scale = torch.sigmoid(raw + 2.0) + SCALE_EPS
        z2 = (z2 + shift) * scale
        ld = ld + torch.log(scale).sum(dim=(1, 2, 3))
        return torch.cat([z1, z2], dim=1), ld


class _Flow(nn.Module):
    def __init__(self, arch: StgnfArchitecture):
        super().__init__()
        self.layers = nn.ModuleList([
_Step(arch.kernel, first=k == 0) for k in range(arch.n_steps)])


class StgnfTorch(nn.Module):
    """Trainable STG-NF; ``forward(x)`` returns ``(nll bits/dim (N,), z)``."""

    def __init__(self, arch: StgnfArchitecture | None = None):
        super().__init__()
        self.arch = arch = arch or StgnfArchitecture()
        c, t, v = 2, arch.seg_len, arch.n_joints
        self.flow = _Flow(arch)
        self.register_buffer("prior_h", torch.zeros(1, 2 * c, t, v))
        normal = torch.zeros(2 * c, t, v)
        normal[:c] = arch.prior_mean
        self.register_buffer("prior_h_normal", normal)
        self.register_buffer("prior_h_abnormal", -normal)
        A = adjacency(arch.max_hops)
        self.register_buffer("A", torch.from_numpy(A), persistent=False)
        self.uniform = bool(np.all(A == A[0, 0]))

    def mark_initialised(self) -> None:
        """After loading weights: ActNorm must not re-initialise itself from data."""
        for step in self.flow.layers:
            step.actnorm.initialised = True

    def forward(self, x, steps: bool = False):
        z = x
        ld = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        history = []
        for step in self.flow.layers:
            z, ld_k = step(z, self.A, self.uniform)
            ld = ld + ld_k
            if steps:
                history.append((z, ld))
        c = z.shape[1]
        mean, logs = self.prior_h_normal[:c], self.prior_h_normal[c:]
        log_p = -0.5 * (2.0 * logs + (z - mean) ** 2 / (torch.exp(2.0 * logs) + SCALE_EPS) + _LOG_2PI)
        ll = ld + log_p.sum(dim=(1, 2, 3))
        nll = -ll / (math.log(2.0) * self.arch.dims)
        return (nll, z, history) if steps else (nll, z)


def state_dict_numpy(model: StgnfTorch) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().to(torch.float32).numpy().copy() for k, v in model.state_dict().items()}


def model_from_weights(weights: dict[str, np.ndarray], arch: StgnfArchitecture) -> StgnfTorch:
    m = StgnfTorch(arch)
    sd = m.state_dict()
    m.load_state_dict({k: torch.as_tensor(np.asarray(weights[k])).to(sd[k].dtype).reshape(sd[k].shape)
                       for k in sd}, strict=True)
    m.mark_initialised()
    return m


class _Progress:
    """One-line progress bar on stderr (a plain line per epoch when stderr is not a terminal)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.t0 = total, enabled, time.monotonic()
        self.tty = enabled and sys.stderr.isatty()

    def update(self, done: int, text: str, end_of_epoch: bool = False) -> None:
        if not self.enabled or not (self.tty or end_of_epoch):
            return
        frac = done / max(self.total, 1)
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        line = f"train [{bar}] {100 * frac:5.1f}% {text} {time.monotonic() - self.t0:6.1f}s"
        sys.stderr.write(("\r" + line) if self.tty else (line + "\n"))
        if self.tty and done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def train_stgnf(windows: np.ndarray, epochs: int = 8, *, batch_size: int = 256, lr: float = 5e-4,
                seed: int = 0, arch: StgnfArchitecture | None = None, progress: bool = True,
                threads: int | None = 1, init_weights: dict | None = None
                ) -> tuple[dict[str, np.ndarray], dict]:
    """Train on normalised windows ``(N, 2, T, 18)``; returns (state_dict-named weights, metrics)."""
    arch = arch or StgnfArchitecture()
    x = np.ascontiguousarray(windows, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != (2, arch.seg_len, arch.n_joints):
        raise ValueError(f"training windows must be (N, 2, {arch.seg_len}, {arch.n_joints}), got {x.shape}")
    if len(x) < 2:
        raise ValueError(f"need at least 2 training windows, got {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError("training windows contain NaN or infinity")
    if epochs < 1 or batch_size < 2:
        raise ValueError("epochs must be >= 1 and batch_size >= 2")
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    model = StgnfTorch(arch)
    if init_weights is not None:
        model = model_from_weights(init_weights, arch)
    data = torch.from_numpy(x)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adamax(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    n_batches = math.ceil(len(x) / batch_size)
    bar = _Progress(epochs * n_batches, progress)
    epoch_losses, t0 = [], time.monotonic()
    model.train()
    for epoch in range(epochs):
        for g in opt.param_groups:
            g["lr"] = lr * 0.99 ** max(epoch - 1, 0)
        order = torch.randperm(len(x), generator=gen)
        total, count = 0.0, 0
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            if len(idx) < 2:  # BatchNorm in training mode needs more than one window
                continue
            nll, _ = model(data[idx])
            loss = nll.mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training diverged: loss {loss.item()} at epoch {epoch + 1}, batch {b + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 100.0)
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
            bar.update(epoch * n_batches + b + 1, f"epoch {epoch + 1}/{epochs} loss {total / count:.3f}",
                       end_of_epoch=b == n_batches - 1)
        epoch_losses.append(total / max(count, 1))
    weights = state_dict_numpy(model)
    from edge.scoring.flow_numpy import NumpyFlow

    nll = NumpyFlow(weights, arch).forward(x).nll.astype(np.float64)
    q = np.quantile(nll, [0.5, 0.9, 0.95, 0.99])
    metrics = {
        "epoch_loss_bpd": [round(v, 6) for v in epoch_losses],
        "final_loss_bpd": round(epoch_losses[-1], 6),
        "train_nll_bpd_eval": {"mean": float(nll.mean()), "p50": float(q[0]), "p90": float(q[1]),
                               "p95": float(q[2]), "p99": float(q[3]), "max": float(nll.max())},
        "train_seconds": round(time.monotonic() - t0, 2),
    }
    return weights, metrics


def train_model(data, out_dir, *, epochs: int = 8, batch_size: int = 256, lr: float = 5e-4, seed: int = 0,
                seg_len: int = 24, stride: int = 6, divisors=(856.0, 480.0), flip: bool = True,
                filter_cfg=None, progress: bool = True, threads: int | None = 1,
                normalization: str = DETRENDED):
    """Read ``data``'s training split, train, and write the model directory ``out_dir``; returns its card.

    ``normalization`` is the window normalisation (see :mod:`edge.windowing.stgnf`); the card records
    it, and everything that scores with the model applies it."""
    from edge.scoring.card import TrainingInfo, sha256_windows
    from edge.scoring.model_io import save_model
    from edge.scoring.train_data import training_set

    x, info = training_set(data, seg_len=seg_len, stride=stride, divisors=divisors, flip=flip,
                           filter_cfg=filter_cfg, normalization=normalization)
    arch = StgnfArchitecture(seg_len=seg_len)
    weights, metrics = train_stgnf(x, epochs, batch_size=batch_size, lr=lr, seed=seed, arch=arch,
                                   progress=progress, threads=threads)
    metrics["data"] = info
    training = TrainingInfo(source="trained", data_sha256=sha256_windows(x), data_description=info["data"],
                            n_windows=len(x), epochs=epochs, batch_size=batch_size, learning_rate=lr, seed=seed,
                            metrics=metrics)
    return save_model(out_dir, weights, arch, divisors=divisors, normalization=normalization, training=training)
