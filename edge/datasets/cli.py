"""``poselift-edge convert``: PoseLift pickles <-> STG-NF JSON layout."""

from __future__ import annotations

import logging
import sys
import warnings


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert between the PoseLift and the STG-NF JSON layouts",
                       description="Convert a dataset between the PoseLift layout (Pickle_files/{Train,Test,GT}) "
                                   "and the STG-NF/Shopformer JSON layout (pose/{train,test}, gt/test_frame_mask). "
                                   "Video names map 1_126 <-> 01_0126.")
    p.add_argument("--from", dest="src_layout", choices=("auto", "poselift", "json"), default="auto",
                   help="layout of SRC (default: detect)")
    p.add_argument("src", metavar="SRC", help="source dataset folder")
    p.add_argument("--to", dest="dst_layout", choices=("poselift", "json"), required=True,
                   help="layout to write")
    p.add_argument("dst", metavar="DST", help="destination folder (created)")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge.datasets.convert import convert
    from edge.datasets.poselift import DatasetError

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    warnings.simplefilter("always")
    warnings.showwarning = lambda msg, *a, **k: print(f"warning: {msg}", file=sys.stderr)
    try:
        ds = convert(args.src, args.dst, src_layout=args.src_layout, dst_layout=args.dst_layout)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    orders = sorted({v.bbox_order for v in ds.train + ds.test if v.tracks})
    print(f"wrote {len(ds.train)} train and {len(ds.test)} test videos to {args.dst} as {args.dst_layout}"
          + (f" (source bbox order: {', '.join(orders)})" if args.src_layout != "json" and orders else ""))
    return 0
