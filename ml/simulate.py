"""Which strategy saves the most labels on data like mine? Replay it before labeling.

    python -m ml.simulate --data DIR --strategies random,margin,class_balanced \\
        --seeds 5 --initial 20 --batch 20 --rounds 15 --out results.json --plot curves.png

``DIR`` is a fully labeled ImageFolder (``DIR/<class>/<image>``). For every seed a
stratified holdout is set aside; the rest is the pool whose labels are revealed only when
a strategy asks for them. Without ``--strategies`` it compares ``random`` with the default
strategy Loupe uses for new projects.

``results.json`` holds ``full_data`` (metrics when trained on the whole pool),
``curves.<strategy>.labels`` / ``balanced_accuracy_mean`` / ``_std`` / ``macro_f1_mean`` /
``_std`` per round, ``labels_to_target.<strategy>`` (labels at which the mean curve
reaches ``--target`` of the full-data balanced accuracy, or null), per-seed values in
``labels_to_target_per_seed``, ``stop_signal_at.<strategy>`` (per seed, the label count
at which :mod:`ml.stopping` first said more labels stop paying, or null) and
``default_strategy``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ml.strategies import DEFAULT_STRATEGY, available


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ml.simulate",
        description="Replay active learning on a fully labeled ImageFolder dataset.",
    )
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="image_classification",
        help="what is labeled (pair_verification: see python -m ml.simulation.pairs --help;"
        " object_detection: python -m ml.simulation.detection --help)",
    )
    parser.add_argument("--data", required=True, help="ImageFolder root: DIR/<class>/<image>")
    parser.add_argument(
        "--strategies",
        default=f"random,{DEFAULT_STRATEGY}",
        help=f"comma-separated, from: {', '.join(available())} "
        f"(default: random,{DEFAULT_STRATEGY})",
    )
    parser.add_argument("--seeds", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--initial", type=int, default=20, help="initial random labels")
    parser.add_argument("--batch", type=int, default=20, help="labels per round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds after the initial set")
    parser.add_argument("--holdout", type=float, default=0.25, help="holdout fraction")
    parser.add_argument(
        "--target", type=float, default=0.9, help="fraction of full-data balanced accuracy"
    )
    parser.add_argument(
        "--control-fraction",
        type=float,
        default=0.1,
        help="random control slice per batch (default 0.1, as a new project has; the adaptive"
        " default weighs its strategies against it)",
    )
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--grayscale", action="store_true", help="read images as one channel")
    parser.add_argument(
        "--min-steps", type=int, default=150, help="least optimisation steps per training"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per training (0 = torch's default; 1 is fastest on busy hosts)",
    )
    parser.add_argument("--out", default="results.json", help="where to write the results")
    parser.add_argument("--plot", help="also draw the learning curves to this PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


TASKS = ("image_classification", "pair_verification", "object_detection")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code.

    ``--task pair_verification`` replays pair labeling instead (:mod:`ml.simulation.pairs`,
    whose own options then apply: ``--data`` is an ImageFolder with one folder per identity);
    ``--task object_detection`` replays page labeling (:mod:`ml.simulation.detection`:
    ``--data`` holds ``annotations.json``, COCO, and its images).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    task = argparse.ArgumentParser(add_help=False)
    task.add_argument("--task", choices=TASKS, default="image_classification")
    known, rest = task.parse_known_args(argv)
    if known.task == "pair_verification":
        from ml.simulation.pairs import main as simulate_pairs_main

        return simulate_pairs_main(rest)
    if known.task == "object_detection":
        from ml.simulation.detection import main as simulate_detection_main

        return simulate_detection_main(rest)
    args = build_parser().parse_args(rest)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in available()]
    if unknown:
        print(f"unknown strategies: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if not Path(args.data).is_dir():
        print(f"no such folder: {args.data}", file=sys.stderr)
        return 2

    from ml.simulation import plot_curves, simulate_imagefolder

    results = simulate_imagefolder(
        args.data,
        image_size=args.image_size,
        mode="L" if args.grayscale else "RGB",
        min_steps=args.min_steps,
        threads=args.threads or None,
        strategies=strategies,
        seeds=args.seeds,
        initial=args.initial,
        batch=args.batch,
        rounds=args.rounds,
        holdout_fraction=args.holdout,
        target_fraction=args.target,
        control_fraction=args.control_fraction,
        progress=not args.quiet,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    if args.plot:
        plot_curves(results, args.plot)
    full = results["full_data"]
    print(
        f"full data: balanced accuracy {full['balanced_accuracy_mean']:.3f} "
        f"± {full['balanced_accuracy_std']:.3f}; target {full['target_balanced_accuracy']:.3f}"
    )
    for name in strategies:
        summary = results["labels_to_target_summary"][name]
        reached = results["labels_to_target"][name]
        print(
            f"{name:>18}: labels to target (mean curve) {reached if reached else 'not reached'}; "
            f"per seed {summary['mean']:.0f} ± {summary['std']:.0f} "
            f"({summary['missed']}/{summary['seeds']} seeds missed); "
            f"stop signal at {results['stop_signal_at'][name]}"
        )
    print(f"results written to {out}" + (f", curves to {args.plot}" if args.plot else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
