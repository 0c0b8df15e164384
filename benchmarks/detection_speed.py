"""The tiny-object detector on synthetic score pages: training time, pages/s, mAP.

Trains :class:`ml.detection.CenterNet` from scratch on ``--pages`` synthetic printed score
pages (``ml.synthetic_scores``, 768x1024, 17 classes), then scores ``--test-pages`` other
pages as overlapping tiles and prints pages/s beside one bare forward pass of the whole page
(what tiling, decoding and merging cost), and mAP@0.5, mAP@[.5:.95], AP small and the
per-class AP table with the largest confusions. Each timing is the best of ``--repeats``.

    .venv/bin/python benchmarks/detection_speed.py                  # ~3 min on one CPU core
    .venv/bin/python benchmarks/detection_speed.py --steps 0        # speed only, untrained
    .venv/bin/python benchmarks/detection_speed.py --scanned        # + mAP on scanned pages
    .venv/bin/python benchmarks/detection_speed.py --scanned --blur 0 --light 0  # without
    .venv/bin/python benchmarks/detection_speed.py --device cuda --steps 3000 --pages 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.detection import (  # noqa: E402
    ALIGN,
    CenterNet,
    as_page,
    background_value,
    detect,
    tile_starts,
)
from ml.detection_augment import DetectionAugment  # noqa: E402
from ml.detection_metrics import detection_metrics  # noqa: E402
from ml.detection_training import DetectionTrainConfig, train_detector  # noqa: E402
from ml.device import describe_device, pick_device  # noqa: E402
from ml.synthetic_scores import CLASSES, render_page  # noqa: E402


def score_pages(n: int, *, seed: int, scanned: bool = False):
    """``(pages, targets)`` of ``n`` synthetic score pages: grey arrays and xyxy boxes."""
    pages, targets = [], []
    for i in range(n):
        drawn = render_page(seed=(seed, i), scanned=scanned)
        pages.append(np.asarray(drawn.image, np.float32) / 255.0)
        boxes = np.array([[b.x, b.y, b.x + b.w, b.y + b.h] for b in drawn.boxes], np.float32)
        labels = np.array([CLASSES.index(b.label) for b in drawn.boxes], np.int64)
        targets.append({"boxes": boxes.reshape(-1, 4), "labels": labels})
    return pages, targets


def page_tiles(pages, *, tile_size: int, overlap: int, in_channels: int = 1) -> list[torch.Tensor]:
    """The windows :func:`ml.detection.detect` scores, per page ``(n, C, th, tw)``: the
    page's overlapping tiles at native resolution (a page smaller than a tile gets one tile
    rounded up to 16 pixels, filled with its paper), so a bare forward pass can run on
    exactly the same pixels."""
    out = []
    for raw in pages:
        page = as_page(raw, in_channels)
        _, h, w = page.shape
        th = min(tile_size, -(-h // ALIGN) * ALIGN)
        tw = min(tile_size, -(-w // ALIGN) * ALIGN)
        paper = background_value(page)
        tiles = []
        for y0 in tile_starts(h, th, overlap):
            for x0 in tile_starts(w, tw, overlap):
                window = page.new_full((page.shape[0], th, tw), paper)
                part = page[:, y0 : y0 + th, x0 : x0 + tw]
                window[:, : part.shape[1], : part.shape[2]] = part
                tiles.append(window)
        out.append(torch.stack(tiles))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn, device, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--test-pages", type=int, default=4)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tile", type=int, default=384, help="scoring tile size (pixels)")
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scanned", action="store_true", help="also score scanned versions of the test pages"
    )
    augment = DetectionAugment()
    parser.add_argument("--blur", type=float, default=augment.blur, help="DetectionAugment.blur")
    parser.add_argument("--light", type=float, default=augment.light, help="DetectionAugment.light")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    train_pages, train_targets = score_pages(args.pages, seed=args.seed)
    test_pages, test_targets = score_pages(args.test_pages, seed=args.seed + 1000)
    model = CenterNet(len(CLASSES), seed=args.seed)
    print(f"device {describe_device(device)}; {len(CLASSES)} classes; pages 768x1024")
    print(f"train: {args.pages} pages, {sum(len(t['labels']) for t in train_targets)} boxes")
    if args.steps:
        config = DetectionTrainConfig(
            steps=args.steps,
            batch_size=args.batch_size,
            seed=args.seed,
            device=str(device),
            augment=DetectionAugment(blur=args.blur, light=args.light),
        )
        result = train_detector(model, train_pages, train_targets, config=config)
        print(
            f"trained {args.steps} steps of {args.batch_size} crops of {config.tile_size} px "
            f"in {result.seconds:.1f} s ({args.steps / result.seconds:.1f} steps/s)"
        )
    model.to(device).eval()

    def tiled():
        return detect(
            model, test_pages, tile_size=args.tile, overlap=args.overlap, device=str(device)
        )

    whole = torch.as_tensor(np.stack(test_pages[:1]))[:, None].to(device)

    def bare():
        with torch.inference_mode():
            model(whole)

    tiled()  # warm-up
    seconds = _best(tiled, device, args.repeats) / len(test_pages)
    bare_seconds = _best(bare, device, args.repeats)
    print(f"| scoring (tiles of {args.tile}, overlap {args.overlap}) | pages/s | s/page |")
    print("|---|---:|---:|")
    print(f"| ml.detection.detect (tiles, decode, merge) | {1 / seconds:.2f} | {seconds:.3f} |")
    print(f"| bare forward of the whole page | {1 / bare_seconds:.2f} | {bare_seconds:.3f} |")
    found = tiled()
    report = detection_metrics(
        test_targets, [f.as_dict() for f in found], num_classes=len(CLASSES), class_names=CLASSES
    )

    def fmt(value):
        return "-" if value is None else f"{value:.3f}"

    print(
        f"\nmAP@0.5 {fmt(report['map50'])}  mAP@[.5:.95] {fmt(report['map'])}  "
        f"AP small {fmt(report['ap_small'])}  ({args.test_pages} test pages, "
        f"{report['true_boxes']} boxes)"
    )
    print("| class | AP50 | AP | support |")
    print("|---|---:|---:|---:|")
    for row in report["per_class"]:
        print(f"| {row['class']} | {fmt(row['ap50'])} | {fmt(row['ap'])} | {row['support']} |")
    for cell in report["confusions"][:6]:
        print(f"confused: {cell['count']} {cell['true']} found as {cell['predicted']}")
    if args.scanned:
        scanned_pages, scanned_targets = score_pages(
            args.test_pages, seed=args.seed + 1000, scanned=True
        )
        found = detect(
            model, scanned_pages, tile_size=args.tile, overlap=args.overlap, device=str(device)
        )
        shifted = detection_metrics(
            scanned_targets,
            [f.as_dict() for f in found],
            num_classes=len(CLASSES),
            class_names=CLASSES,
        )
        print(
            f"\nscanned versions of the same pages (trained on clean ones): "
            f"mAP@0.5 {fmt(shifted['map50'])}  mAP@[.5:.95] {fmt(shifted['map'])}"
        )


if __name__ == "__main__":
    main()
