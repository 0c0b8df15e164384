"""The tiny-object detector on pages whose objects are known (tests/ml/detection_pages.py)."""

import numpy as np
import pytest
import torch

from ml.detection import CenterNet, _decode_tile, _owned, as_page, detect, tile_starts
from ml.detection_augment import NO_AUGMENT, DetectionAugment, sample_crop
from ml.detection_metrics import box_iou, detection_metrics
from ml.detection_training import (
    DetectionTrainConfig,
    heatmap_focal_loss,
    make_targets,
    train_detector,
)
from tests.ml.detection_pages import CLASSES, draw_pages


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _map(truth, found, **kwargs):
    return detection_metrics(
        truth, [f.as_dict() for f in found], num_classes=3, class_names=CLASSES, **kwargs
    )


@pytest.fixture(scope="module")
def trained():
    """A detector trained for ~200 steps (well under a minute on one core)."""
    torch.set_num_threads(1)
    pages, boxes = draw_pages(24, seed=0)
    model = CenterNet(3, seed=0)
    result = train_detector(model, pages, boxes, config=DetectionTrainConfig(steps=200, seed=0))
    return result


def test_targets_decode_back_to_the_boxes_they_were_made_of():
    boxes = np.array([[10, 12, 16, 18], [40.5, 7, 43.5, 10], [60, 60, 90, 75]], np.float32)
    labels = np.array([0, 2, 1])
    heat, reg, mask = make_targets(boxes, labels, 3, 128)
    assert heat.shape == (3, 32, 32) and mask.sum() == 3
    found, classes, scores, probs, _ = _decode_tile(
        torch.from_numpy(heat), torch.from_numpy(reg), None, 0.5, 100
    )
    order = np.argsort(classes.numpy())
    np.testing.assert_allclose(found.numpy()[order], boxes[np.argsort(labels)], atol=1e-4)
    np.testing.assert_array_equal(scores.numpy(), 1.0)
    np.testing.assert_allclose(probs.numpy().max(axis=1), 1.0)


def test_tiles_cover_the_page_and_each_centre_has_one_owner():
    for length, tile, overlap in ((1024, 256, 32), (300, 128, 48), (100, 128, 32), (256, 256, 32)):
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile >= length
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))
        spans = _owned(starts, tile)
        for centre in np.linspace(0, length - 1e-3, 97):
            owners = [i for i, (lo, hi) in enumerate(spans) if lo <= centre < hi]
            assert len(owners) == 1
            # The owner sees the centre at least half the overlap away from an inner edge.
            i = owners[0]
            if i > 0:
                assert centre - starts[i] >= overlap / 2 - 1e-9
            if i < len(starts) - 1:
                assert starts[i] + tile - centre >= overlap / 2 - 1e-9


def test_a_crop_keeps_its_boxes_on_the_ink_at_native_scale():
    pages, boxes = draw_pages(1, seed=3)
    page = as_page(pages[0], 1)
    g = torch.Generator().manual_seed(0)
    for around in range(len(boxes[0]["labels"])):
        tile, crop_boxes, labels = sample_crop(
            page,
            boxes[0]["boxes"],
            boxes[0]["labels"],
            size=64,
            background=1.0,
            augment=NO_AUGMENT,
            generator=g,
            around=around,
        )
        assert tile.shape == (1, 64, 64) and len(crop_boxes) >= 1
        for x1, y1, x2, y2 in crop_boxes.astype(int):
            if x2 - x1 >= 3 and y2 - y1 >= 3:  # whole inside the crop: all ink
                assert float(tile[0, y1:y2, x1:x2].max()) == 0.0


def test_augmentations_are_deterministic_by_seed_and_never_flip_by_default():
    pages, boxes = draw_pages(1, seed=4)
    page = as_page(pages[0], 1)
    assert DetectionAugment().hflip == 0.0 and DetectionAugment().vflip == 0.0

    def crop(seed):
        return sample_crop(
            page,
            boxes[0]["boxes"],
            boxes[0]["labels"],
            size=64,
            background=1.0,
            augment=DetectionAugment(),
            generator=torch.Generator().manual_seed(seed),
            around=0,
        )

    first, again, other = crop(1), crop(1), crop(2)
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    thick = DetectionAugment(scale=0, jitter=0, margin=0, ink=1.0, blur=0, light=0, noise=0)
    inked = [
        sample_crop(
            page,
            boxes[0]["boxes"],
            boxes[0]["labels"],
            size=128,
            background=1.0,
            augment=thick,
            generator=torch.Generator().manual_seed(s),
        )[0]
        for s in range(8)
    ]
    ink = float((page < 0.5).float().mean())
    # Some draws thicken the strokes, some thin them.
    assert max(float((t < 0.5).float().mean()) for t in inked) > ink
    assert min(float((t < 0.5).float().mean()) for t in inked) < ink


def test_training_is_deterministic_by_seed():
    pages, boxes = draw_pages(4, seed=1)
    config = DetectionTrainConfig(steps=3, batch_size=4, seed=5)
    a = train_detector(CenterNet(3, seed=0), pages, boxes, config=config).model
    b = train_detector(CenterNet(3, seed=0), pages, boxes, config=config).model
    c = train_detector(
        CenterNet(3, seed=0),
        pages,
        boxes,
        config=DetectionTrainConfig(steps=3, batch_size=4, seed=6),
    ).model
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert any(
        not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True)
    )


def test_the_trained_detector_finds_the_objects_an_untrained_one_misses(trained):
    pages, truth = draw_pages(12, seed=100)
    before = _map(truth, detect(CenterNet(3, seed=0), pages))
    after = _map(truth, detect(trained.model, pages))
    print(
        f"mAP@0.5 untrained {before['map50']:.3f} trained {after['map50']:.3f}, "
        f"mAP {after['map']:.3f}, AP small {after['ap_small']:.3f}"
    )
    assert before["map50"] < 0.1
    assert after["map50"] > 0.8
    assert after["ap_small"] > 0.4


def test_the_context_class_is_told_apart(trained):
    pages, truth = draw_pages(12, seed=101)
    report = _map(truth, detect(trained.model, pages))
    rows = {row["class"]: row for row in report["per_class"]}
    print({name: round(row["ap50"], 3) for name, row in rows.items()}, report["confusions"])
    # The same 3x3 dot: beside a square or alone.
    assert rows["dot_after"]["ap50"] > 0.75 and rows["dot_alone"]["ap50"] > 0.75
    matrix = np.array(report["confusion_matrix"])
    dots = matrix[1, 1] + matrix[2, 2]
    assert matrix[1, 2] + matrix[2, 1] <= 0.1 * dots


def test_tiles_merge_without_duplicate_boxes_across_borders(trained):
    # A wide page cut into 64-pixel tiles: many objects sit on tile borders.
    pages, truth = draw_pages(3, size=128, width=320, seed=102, max_objects=40)
    whole = detect(trained.model, pages, tile_size=320)
    tiled = detect(trained.model, pages, tile_size=64, overlap=32)
    for page in tiled:
        confident = page.scores >= 0.3
        boxes, labels = page.boxes[confident], page.labels[confident]
        iou = box_iou(boxes, boxes)
        same = labels[:, None] == labels[None, :]
        np.fill_diagonal(iou, 0)
        assert not (same & (iou > 0.3)).any()
    whole_map, tiled_map = _map(truth, whole)["map50"], _map(truth, tiled)["map50"]
    assert tiled_map > 0.8 and tiled_map > whole_map - 0.05
    for a, b in zip(whole, tiled, strict=True):
        assert abs(int((a.scores >= 0.3).sum()) - int((b.scores >= 0.3).sum())) <= 2


def test_boxes_carry_uncertainty_and_pages_an_embedding(trained):
    pages, _ = draw_pages(2, seed=103)
    found = detect(trained.model, pages, mc_samples=3)
    for page in found:
        m = len(page.boxes)
        assert m and page.class_probs.shape == (m, 3)
        np.testing.assert_allclose(page.class_probs.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(page.uncertainty, 1 - page.class_probs.max(axis=1), atol=1e-6)
        assert (page.entropy >= 0).all() and (page.entropy <= np.log(3) + 1e-6).all()
        assert np.isfinite(page.mutual_information).all() and (page.mutual_information >= 0).all()
        assert page.embedding.shape == (trained.model.embedding_dim,)
        assert (np.diff(page.scores) <= 0).all()
    # Confident boxes are sure of their class; MC draws are deterministic by seed.
    again = detect(trained.model, pages, mc_samples=3)
    np.testing.assert_array_equal(found[0].mutual_information, again[0].mutual_information)


def test_a_label_outside_the_classes_is_refused():
    pages, boxes = draw_pages(1, seed=5)
    boxes[0]["labels"][0] = 3
    with pytest.raises(ValueError, match="outside 0..2"):
        train_detector(CenterNet(3, seed=0), pages, boxes, config=DetectionTrainConfig(steps=1))


def test_the_focal_loss_weighs_each_class_by_its_weight():
    boxes = np.array([[10, 10, 16, 16], [40, 40, 43, 43]], np.float32)
    heat, _, _ = make_targets(boxes, np.array([0, 1]), 2, 64)
    target = torch.from_numpy(heat)[None]
    logits = torch.zeros_like(target)
    per_class = [
        float(heatmap_focal_loss(logits, target, torch.tensor(w)))
        for w in ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 1.0])
    ]
    assert per_class[2] == pytest.approx(per_class[0] + per_class[1])
    assert per_class[3] == pytest.approx(3 * per_class[0] + per_class[1])


def test_pages_come_in_any_common_layout():
    grey = np.full((20, 30), 255, np.uint8)
    assert as_page(grey, 1).shape == (1, 20, 30) and float(as_page(grey, 1).max()) == 1.0
    colour = np.zeros((20, 30, 3), np.uint8)
    assert as_page(colour, 1).shape == (1, 20, 30)
    assert as_page(torch.rand(1, 20, 30), 3).shape == (3, 20, 30)
    with pytest.raises(ValueError, match="a page must be"):
        as_page(np.zeros((2, 2, 2, 2)), 1)


def test_a_page_kept_as_bytes_gives_the_crop_of_its_floats():
    pages, boxes = draw_pages(1, seed=6)
    page = as_page(pages[0], 1)

    def crop(p):
        return sample_crop(
            p,
            boxes[0]["boxes"],
            boxes[0]["labels"],
            size=64,
            background=1.0,
            augment=DetectionAugment(noise=0.0),
            generator=torch.Generator().manual_seed(3),
        )

    floats, compact = crop(page), crop((page * 255).round().to(torch.uint8))
    assert compact[0].dtype == torch.float32
    # Contrast changes may stretch the rounding of a byte a little.
    torch.testing.assert_close(floats[0], compact[0], atol=2 / 255, rtol=0)
    np.testing.assert_array_equal(floats[1], compact[1])


def test_blur_and_light_change_the_crop_but_not_its_boxes():
    pages, boxes = draw_pages(1, seed=7)
    page = as_page(pages[0], 1)

    def crop(augment):
        return sample_crop(
            page,
            boxes[0]["boxes"],
            boxes[0]["labels"],
            size=64,
            background=1.0,
            augment=augment,
            generator=torch.Generator().manual_seed(4),
            around=0,
        )

    plain = crop(NO_AUGMENT)
    scanned = crop(
        DetectionAugment(scale=0, jitter=0, margin=0, ink=0, noise=0, blur=1.0, light=0.3)
    )
    np.testing.assert_array_equal(plain[1], scanned[1])
    assert not torch.equal(plain[0], scanned[0])


def test_detection_augmentations_say_what_they_do_to_a_crop():
    words = DetectionAugment().describe()
    assert words.startswith("zoomed by up to ± 8%, moved by up to 6 px around its object")
    assert "contrast × 1 ± 0.2 and paper brightness ± 0.1" in words
    assert "mirrored" not in words  # music symbols are never mirrored by default
    assert NO_AUGMENT.describe() == "nothing"
    assert DetectionAugment(vflip=0.5).describe().endswith("upside down with probability 0.5")
