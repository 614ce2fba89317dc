"""``poselift-edge train``: train STG-NF on the normal (train) split of a dataset."""

from __future__ import annotations

import sys

from edge.windowing.stgnf import DETRENDED, WINDOW_MEAN


def register(sub) -> None:
    p = sub.add_parser("train", help="train an STG-NF model on normal data",
                       description="Train STG-NF on the train split (normal behaviour only) of a dataset in the "
                                   "PoseLift layout or the STG-NF JSON layout (detected), and write a model "
                                   "directory (card.json, stgnf.onnx, weights.npz). Needs the 'train' extra.")
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--epochs", type=int, default=8, help="epochs (default 8, as published)")
    p.add_argument("--batch-size", type=int, default=256, help="windows per batch (default 256)")
    p.add_argument("--lr", type=float, default=5e-4, help="initial Adamax learning rate (default 5e-4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--seg-len", type=int, default=24, help="frames per window (default 24)")
    p.add_argument("--stride", type=int, default=6, help="window stride along a track (default 6)")
    p.add_argument("--divisors", type=float, nargs=2, default=(856.0, 480.0), metavar=("W", "H"),
                   help="normalisation divisors in pixels (default 856 480, the published setting)")
    p.add_argument("--normalization", choices=(DETRENDED, WINDOW_MEAN), default=DETRENDED,
                   help="window normalisation: detrended-std-y (default) removes the person's steady drift through "
                        "the view; window-std-y is the published STG-NF rule (subtract the window mean)")
    p.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    p.add_argument("--filter", action="store_true",
                   help="run the pose filter on each track first (settings from --config, else defaults)")
    p.add_argument("--config", help="configuration file whose [filtering] section --filter uses")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the model is tiny, more threads only add overhead)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args) -> int:
    try:
        from edge.scoring.train import train_model
    except ImportError as e:
        print(f"error: training needs torch (pip install 'poselift-edge[train]'): {e}", file=sys.stderr)
        return 2
    filter_cfg = None
    if args.filter:
        from edge.config import FilteringConfig, load_config

        filter_cfg = load_config(args.config).filtering if args.config else FilteringConfig()
    try:
        card = train_model(args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           seed=args.seed, seg_len=args.seg_len, stride=args.stride, divisors=tuple(args.divisors),
                           flip=not args.no_flip, filter_cfg=filter_cfg, progress=not args.quiet,
                           threads=args.threads, normalization=args.normalization)
    except (OSError, ValueError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    m = card.training.metrics
    print(f"wrote {args.out}: {card.training.n_windows} windows, {args.epochs} epochs, "
          f"final loss {m['final_loss_bpd']:.3f} bits/dim, train NLL p95 {m['train_nll_bpd_eval']['p95']:.3f}, "
          f"{m['train_seconds']:.1f} s")
    return 0
