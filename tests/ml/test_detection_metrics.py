"""Detection metrics against hand-computed cases and against pycocotools' figures."""

import numpy as np
import pytest

from ml.detection_metrics import (
    batched_nms,
    box_iou,
    class_confusions,
    detection_metrics,
    interpolated_ap,
    nms,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def _page(boxes, labels, scores=None):
    page = {"boxes": np.asarray(boxes, float).reshape(-1, 4), "labels": np.asarray(labels)}
    if scores is not None:
        page["scores"] = np.asarray(scores, float)
    return page


def test_iou_of_boxes_by_hand():
    a = [[0, 0, 10, 10]]
    b = [[0, 0, 10, 10], [5, 0, 15, 10], [10, 10, 20, 20], [2, 2, 4, 4]]
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0, 4 / 100]])
    assert box_iou(np.empty((0, 4)), b).shape == (0, 4)


def test_xywh_and_xyxy_convert_both_ways():
    xywh = np.array([[3, 4, 5, 6]], float)
    np.testing.assert_array_equal(xywh_to_xyxy(xywh), [[3, 4, 8, 10]])
    np.testing.assert_array_equal(xyxy_to_xywh(xywh_to_xyxy(xywh)), xywh)


def test_nms_keeps_the_best_of_overlapping_boxes_and_spares_other_classes():
    boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]]
    scores = [0.9, 0.8, 0.7, 0.95]
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [3, 2])
    # Box 1 overlaps box 0 at IoU 0.82 but is another class: it stays.
    kept = batched_nms(boxes, scores, [0, 1, 0, 0], 0.5)
    np.testing.assert_array_equal(kept, [3, 1, 2])


def test_nms_agrees_with_the_plain_greedy_loop_on_crowded_random_boxes():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 60, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(2, 9, (300, 2))], axis=1)
    scores = rng.random(300)
    order, expected = list(np.argsort(-scores, kind="stable")), []
    while order:
        best, order = order[0], order[1:]
        expected.append(best)
        order = [i for i in order if box_iou(boxes[[best]], boxes[[i]])[0, 0] <= 0.3]
    np.testing.assert_array_equal(nms(boxes, scores, 0.3), expected)


def test_101_point_ap_by_hand():
    # Two true boxes; detections hit, miss, hit: precision 1, 1/2, 2/3 at recall .5, .5, 1.
    recall, precision = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    # Recall points 0..0.5 (51 of them) read 1, 0.51..1 (50) read the envelope 2/3.
    assert interpolated_ap(recall, precision) == pytest.approx((51 + 50 * 2 / 3) / 101)
    # Recall never past 0.5: the points above it read 0.
    assert interpolated_ap(np.array([0.5]), np.array([1.0])) == pytest.approx(51 / 101)


def test_map50_and_per_class_ap_by_hand():
    truth = [_page([[0, 0, 10, 10], [20, 0, 30, 10]], [0, 0]), _page([[0, 0, 10, 10]], [1])]
    pred = [
        # class 0: a hit (0.9), a miss (0.8), the second box hit loosely (IoU 0.6, 0.7)
        _page([[0, 0, 10, 10], [50, 50, 60, 60], [22, 0, 32, 10]], [0, 0, 0], [0.9, 0.8, 0.7]),
        _page([[0, 0, 10, 10]], [1], [0.6]),
    ]
    report = detection_metrics(truth, pred, num_classes=2, class_names=["a", "b"])
    a, b = report["per_class"]
    assert a["ap50"] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert b["ap50"] == pytest.approx(1.0) and b["ap"] == pytest.approx(1.0)
    assert report["map50"] == pytest.approx((a["ap50"] + 1.0) / 2)
    # At IoU 0.65 and above the loose box is a miss: class a's AP is 51/101 there.
    loose_iou = box_iou([[20, 0, 30, 10]], [[22, 0, 32, 10]])[0, 0]
    assert loose_iou == pytest.approx(8 / 12)
    thresholds = np.linspace(0.5, 0.95, 10)
    expected = [(51 + 50 * 2 / 3) / 101 if t <= loose_iou else 51 / 101 for t in thresholds]
    assert a["ap"] == pytest.approx(np.mean(expected))
    assert a["support"] == 2 and a["predicted"] == 3
    # Every box here is small (area 100 <= 32²): AP small is AP.
    assert report["ap_small"] == pytest.approx(report["map"])


def test_a_class_without_true_boxes_has_no_ap_and_stays_out_of_the_mean():
    truth = [_page([[0, 0, 10, 10]], [0])]
    pred = [_page([[0, 0, 10, 10], [40, 40, 50, 50]], [0, 1], [0.9, 0.9])]
    report = detection_metrics(truth, pred, num_classes=2)
    assert report["per_class"][1]["ap50"] is None
    assert report["map50"] == pytest.approx(1.0)


def test_ap_small_ignores_large_objects_as_coco_does():
    truth = [_page([[0, 0, 10, 10], [100, 100, 200, 200]], [0, 0])]
    # The large box is missed; a large false positive is ignored for "small" too.
    pred = [_page([[0, 0, 10, 10], [300, 300, 400, 400]], [0, 0], [0.5, 0.9])]
    report = detection_metrics(truth, pred, num_classes=1)
    assert report["ap_small"] == pytest.approx(1.0)
    assert report["map50"] < 0.5


def test_confusions_count_boxes_found_with_the_wrong_class():
    truth = [_page([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [0, 1, 1])]
    pred = [
        _page(
            [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [41, 0, 51, 10], [80, 80, 90, 90]],
            [0, 0, 0, 1, 2],
            [0.9, 0.8, 0.7, 0.2, 0.9],
        )
    ]
    matrix = class_confusions(truth, pred, 3, score_threshold=0.3)
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [2, 0, 0], [0, 0, 0]])
    report = detection_metrics(truth, pred, num_classes=3, class_names=["x", "y", "z"])
    assert report["confusions"] == [{"true": "y", "predicted": "x", "count": 2}]


def _random_case(seed, k=3, pages=6):
    """Pages of random true boxes (small or large), predicted as jittered copies with some
    classes flipped, some missed, some junk boxes and tied scores."""
    rng = np.random.default_rng(seed)
    truth, pred = [], []
    for p in range(pages):
        m = rng.integers(0, 12)
        xy = rng.uniform(0, 200, (m, 2))
        wh = rng.uniform(3, 20, (m, 2)) if rng.random() < 0.5 else rng.uniform(20, 60, (m, 2))
        b = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(0, k, m)
        if p == 0:
            labels[:] = 0
        keep = rng.random(m) < 0.8
        db = b[keep] + rng.normal(0, 2, (keep.sum(), 4))
        dl = labels[keep].copy()
        flip = rng.random(len(dl)) < 0.15
        dl[flip] = rng.integers(0, k, flip.sum())
        j = rng.integers(0, 6)
        jxy = rng.uniform(0, 200, (j, 2))
        jb = np.concatenate([jxy, jxy + rng.uniform(3, 40, (j, 2))], 1)
        db = np.concatenate([db, jb])
        dl = np.concatenate([dl, rng.integers(0, k, j)])
        db[:, 2:] = np.maximum(db[:, 2:], db[:, :2] + 0.5)
        scores = rng.random(len(db)).round(2)
        truth.append(_page(b, labels))
        pred.append(_page(db, dl, scores))
    return truth, pred


# pycocotools 2.0 COCOeval ("bbox") on the same cases: stats[0] (mAP), [1] (AP50), [3] (small).
_COCO_FIGURES = {
    3: (0.15604595074892103, 0.3663789455868664, 0.06185368536853686),
    4: (0.4007405795524608, 0.5859028760018858, 0.1858085808580858),
    8: (0.22712210716870007, 0.4733308624980145, 0.23207161375478208),
}


@pytest.mark.parametrize("seed", sorted(_COCO_FIGURES))
def test_the_figures_agree_with_pycocotools(seed):
    truth, pred = _random_case(seed)
    report = detection_metrics(truth, pred, num_classes=3)
    coco_map, coco_map50, coco_small = _COCO_FIGURES[seed]
    assert report["map"] == pytest.approx(coco_map, abs=1e-9)
    assert report["map50"] == pytest.approx(coco_map50, abs=1e-9)
    assert report["ap_small"] == pytest.approx(coco_small, abs=1e-9)


def test_pages_must_pair_up():
    with pytest.raises(ValueError, match="2 true pages but 1"):
        detection_metrics([_page([], []), _page([], [])], [_page([], [], [])], num_classes=1)


def test_the_best_score_threshold_keeps_the_right_boxes_and_drops_the_faint_ones():
    from ml.detection_metrics import best_score_threshold

    truth = [{"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), "labels": np.array([0, 1])}]
    pred = [
        {
            # Both true boxes found with high scores, and three faint false ones.
            "boxes": np.array(
                [
                    [0, 0, 10, 10],
                    [20, 20, 30, 30],
                    [50, 50, 60, 60],
                    [70, 70, 80, 80],
                    [1, 40, 9, 48],
                ]
            ),
            "labels": np.array([0, 1, 0, 1, 0]),
            "scores": np.array([0.9, 0.8, 0.3, 0.25, 0.2]),
        }
    ]
    best = best_score_threshold(truth, pred, num_classes=2)
    assert 0.3 < best["threshold"] <= 0.8
    assert best == {**best, "f1": 1.0, "precision": 1.0, "recall": 1.0}
    # A wrong class is no match: the second box never counts.
    wrong = [{**pred[0], "labels": np.array([0, 0, 0, 1, 0])}]
    assert best_score_threshold(truth, wrong, num_classes=2)["recall"] == 0.5
    empty = [{"boxes": np.empty((0, 4)), "labels": np.empty(0, np.int64)}]
    assert best_score_threshold(empty, pred, num_classes=2)["threshold"] is None


def test_map50_resamples_equal_map50_recomputed_on_each_resampled_list_of_pages():
    from ml.detection_metrics import detection_metrics, map50_resamples

    rng = np.random.default_rng(4)

    def page(n, predicted):
        xy = rng.uniform(0, 60, (n, 2))
        entry = {
            "boxes": np.c_[xy, xy + rng.uniform(3, 9, (n, 2))],
            "labels": rng.integers(0, 3, n),
        }
        if predicted:
            entry["scores"] = rng.uniform(0.1, 0.9, n)
        return entry

    truth = [page(12, False) for _ in range(6)]
    # Predictions near the true boxes, some of another class, plus strays.
    pred = []
    for t in truth:
        shifted = t["boxes"] + rng.normal(0, 0.8, t["boxes"].shape)
        labels = np.where(rng.random(len(t["labels"])) < 0.2, (t["labels"] + 1) % 3, t["labels"])
        stray = page(4, True)
        pred.append(
            {
                "boxes": np.r_[shifted, stray["boxes"]],
                "labels": np.r_[labels, stray["labels"]],
                "scores": np.r_[rng.uniform(0.4, 1.0, len(labels)), stray["scores"]],
            }
        )
    fast = map50_resamples(truth, pred, num_classes=3, n_resamples=20, seed=7)
    draw = np.random.default_rng(7)
    slow = []
    for _ in range(20):
        pick = draw.integers(0, 6, 6)
        slow.append(
            detection_metrics([truth[i] for i in pick], [pred[i] for i in pick], num_classes=3)[
                "map50"
            ]
        )
    assert fast == pytest.approx(slow, abs=1e-12) and len(set(np.round(fast, 6))) > 1


def test_a_page_the_model_boxed_right_taught_nothing_and_one_it_missed_taught_most():
    from ml.detection_metrics import page_value

    truth = _page([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [0, 1, 1])
    right = _page([[1, 0, 11, 10], [20, 1, 30, 11], [40, 0, 50, 10]], [0, 1, 1], [0.9, 0.8, 0.7])
    assert page_value(right, truth, score_threshold=0.5) == pytest.approx(0.0)
    # The right places with the wrong classes find nothing: matching is class-aware.
    swapped = _page(right["boxes"], [1, 0, 0], right["scores"])
    assert page_value(swapped, truth, score_threshold=0.5) == 1.0
    one_wrong = _page(right["boxes"], [0, 1, 0], right["scores"])
    assert page_value(one_wrong, truth, score_threshold=0.5) == pytest.approx(1.0 - 4 / 6)
    assert page_value(_page([], []), truth, score_threshold=0.5) == 1.0
    # Boxes scoring under the threshold are not shown, so they find nothing.
    assert page_value(right, truth, score_threshold=0.95) == 1.0
    # One of three found, one invented: F1 = 2 * 1 / (2 + 3).
    partial = _page([[0, 0, 10, 10], [100, 100, 110, 110]], [0, 1], [0.9, 0.9])
    assert page_value(partial, truth, score_threshold=0.5) == pytest.approx(1.0 - 2 / 5)


def test_a_page_without_boxes_taught_nothing_unless_the_model_invented_some():
    from ml.detection_metrics import page_value

    empty = _page([], [])
    invented = _page([[0, 0, 10, 10]], [0], [0.9])
    assert page_value(empty, empty, score_threshold=0.3) == 0.0
    assert page_value(invented, empty, score_threshold=0.3) == 1.0
    assert page_value(invented, empty, score_threshold=0.95) == 0.0


def test_a_box_counts_as_found_only_at_the_iou_asked_for():
    from ml.detection_metrics import page_value

    truth = _page([[0, 0, 10, 10]], [0])
    shifted = _page([[4, 0, 14, 10]], [0], [0.9])  # IoU 60 / 140 = 0.43
    assert page_value(shifted, truth, score_threshold=0.3) == 1.0
    assert page_value(shifted, truth, score_threshold=0.3, iou=0.4) == pytest.approx(0.0)
