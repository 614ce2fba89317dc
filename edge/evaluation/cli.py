"""``poselift-edge eval``: the benchmark protocol on a test set, printed and written as a report."""

from __future__ import annotations

import argparse
import sys
import warnings


def _divisors(text: str) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 856x480, got {text!r}") from None
    if not (w > 0 and h > 0):
        raise argparse.ArgumentTypeError(f"divisors must be positive, got {text!r}")
    return w, h


def register(sub) -> None:
    p = sub.add_parser("eval", help="benchmark protocol: AUC-ROC, AUC-PR, EER, per-frame scores, plots",
                       description="Score every test window (stride 1) of a PoseLift-format or STG-NF JSON "
                                   "dataset, apply the STG-NF benchmark protocol and write a report.")
    p.add_argument("--data", required=True, help="dataset root (Pickle_files/... or pose/ + gt/ layout)")
    p.add_argument("--model", required=True, help="model directory (card.json + ONNX)")
    p.add_argument("--report", required=True, help="output directory for metrics.json, frame_scores.csv, PNGs")
    p.add_argument("--divisors", type=_divisors, default=None,
                   help="x and y divisors of the normalisation, WIDTHxHEIGHT (default: the model card's, "
                        "else 856x480 as in the benchmark)")
    p.add_argument("--filter", choices=("none", "centered", "causal", "causal_mean", "one_euro"), default=None,
                   help="run the pose filter on each track before windowing (default: poses as given)")
    p.add_argument("--backend", default="numpy", help="scorer backend (numpy or onnxruntime)")
    p.add_argument("--no-plots", action="store_true", help="write JSON and CSV only")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge.evaluation.report import write_report
    from edge.evaluation.run import evaluate

    filter_cfg = None
    if args.filter is not None:
        from edge.config import FilteringConfig
        filter_cfg = FilteringConfig(smoother=args.filter)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ev = evaluate(args.data, args.model, args.divisors, filter_cfg, args.backend)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"eval: {exc}", file=sys.stderr)
        return 2
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    m = ev.metrics
    print(f"clips {ev.info['clips']}, frames {m['n_frames']} ({m['n_anomalous']} shoplifting, "
          f"rate {m['anomaly_rate']:.3f}), windows {ev.info['windows']}")
    rows = (("AUC-ROC (shoplifting positive)", m["auc_roc"]),
            ("AUC-PR (normal positive, paper convention)", m["auc_pr_normal_positive"]),
            ("AUC-PR (shoplifting positive, Shopformer convention)", m["auc_pr_anomaly_positive"]),
            ("EER", m["eer"]))
    for label, value in rows:
        print(f"{label:<54}{value:.5f}")
    res = write_report(args.report, ev.frames, m, ev.info, plots=not args.no_plots)
    if res["plots_skipped"]:
        print(f"plots skipped: {res['plots_skipped']}", file=sys.stderr)
    print(f"report: {args.report} ({len(res['files'])} files)")
    return 0
