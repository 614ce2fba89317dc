"""``poselift-edge model``: import official STG-NF weights, show a model's card."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("model", help="model tools: import-stgnf, info")
    verbs = p.add_subparsers(dest="verb", required=True)
    imp = verbs.add_parser("import-stgnf", help="import weights of the official STG-NF implementation",
                           description="Import an official STG-NF checkpoint (.tar/.pth.tar/.pth; needs the 'train' "
                                       "extra) or an .npz of its state_dict into a model directory.")
    imp.add_argument("file", help="checkpoint or .npz")
    imp.add_argument("--out", required=True, help="model directory to write")
    imp.add_argument("--max-hops", type=int, default=None,
                     help="adjacency neighbourhood the model was trained with (default: checkpoint args, else 8)")
    imp.add_argument("--divisors", type=float, nargs=2, default=(856.0, 480.0), metavar=("W", "H"),
                     help="normalisation divisors it was trained with (default 856 480)")
    imp.add_argument("--trust-pickle", action="store_true",
                     help="allow full unpickling of a checkpoint you trust (runs code from the file)")
    imp.set_defaults(func=_import)
    info = verbs.add_parser("info", help="print a model directory's card and check its files")
    info.add_argument("model", help="model directory")
    info.add_argument("--json", action="store_true", help="print the card as JSON")
    info.set_defaults(func=_info)


def _import(args) -> int:
    from edge.scoring.architecture import ModelFormatError
    from edge.scoring.importer import import_stgnf

    try:
        card = import_stgnf(args.file, args.out, max_hops=args.max_hops, divisors=tuple(args.divisors),
                            trust_pickle=args.trust_pickle)
    except (ModelFormatError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    a = card.architecture
    print(f"wrote {args.out}: seg_len {a.seg_len}, {a.n_steps} steps, prior mean {a.prior_mean:g}, "
          f"divisors {card.divisors[0]:g}x{card.divisors[1]:g}")
    return 0


def _info(args) -> int:
    from edge.scoring.architecture import ModelFormatError
    from edge.scoring.model_io import ONNX_FILE, load_weights, read_card, verify_file

    try:
        card = read_card(args.model)
        load_weights(args.model, card)
        verify_file(args.model, card, ONNX_FILE)
    except ModelFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(card.to_json())
        return 0
    a, t = card.architecture, card.training
    print(f"model      {card.name} ({card.schema_name} v{card.schema_version}, created {card.created})")
    print(f"network    seg_len {a.seg_len}, {a.n_steps} flow steps, temporal kernel {a.kernel}, "
          f"max_hops {a.max_hops}, prior N({a.prior_mean:g}, 1)")
    print(f"inputs     (N, 2, {a.seg_len}, 18); divisors {card.divisors[0]:g} x {card.divisors[1]:g}, "
          f"normalisation {card.window_normalization}")
    if t is not None:
        src = t.imported_from if t.source == "imported" else f"{t.n_windows} windows, data sha256 {t.data_sha256}"
        print(f"source     {t.source}: {src}")
        if t.metrics:
            print(f"metrics    {json.dumps(t.metrics)[:400]}")
    print(f"threshold  {card.threshold if card.threshold is not None else 'not calibrated'}")
    for name, digest in card.files.items():
        print(f"file       {name} sha256 {digest} (verified)")
    return 0
