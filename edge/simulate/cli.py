"""``poselift-edge simulate``: write a PoseLift-format dataset of generated store scenes."""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("simulate", help="generate a PoseLift-format dataset of synthetic store scenes",
                       description="Generate store scenes (articulated bodies seen by six ceiling cameras, normal "
                                   "shopping and shoplifting, detector-like noise) and write them as PoseLift "
                                   "pickles: OUT/Pickle_files/{Train,Test,GT}.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    p.add_argument("--scale", choices=("small", "paper"), default="small",
                   help="small: seconds, for tests and the demo; paper: the real release's shape")
    p.add_argument("--inventory", default=None,
                   help="folder with the release's train/test_inventory.csv for --scale paper "
                        "(default: $POSELIFT_INVENTORY; without one, a plan of the documented shape is drawn)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge.simulate.dataset import simulate_dataset

    done = [0]

    def progress(vp):
        done[0] += 1
        if not args.quiet and sys.stderr.isatty():
            print(f"\r{done[0]} videos", end="", file=sys.stderr, flush=True)

    try:
        ds, plan, secs = simulate_dataset(args.out, seed=args.seed, scale=args.scale, inventory=args.inventory,
                                          progress=progress)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    n_lab = sum(len(v.labels) for v in ds.test)
    n_anom = sum(int(v.labels.sum()) for v in ds.test)
    print(f"wrote {len(ds.train)} train and {len(ds.test)} test videos to {args.out}/Pickle_files "
          f"({args.scale} scale, plan: {plan.source}, seed {args.seed}) in {secs:.1f} s; "
          f"test frames {n_lab}, shoplifting {n_anom} ({n_anom / max(n_lab, 1):.3f})")
    return 0
