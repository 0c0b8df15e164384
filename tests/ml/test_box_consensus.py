import pytest

from ml.box_consensus import box_consensus, greedy_match, iou_matrix
from ml.detection_io import Box


def nudge(box, dx=0.0, dy=0.0, label=None):
    return Box(box.x + dx, box.y + dy, box.w, box.h, label or box.label)


HEAD = Box(100, 100, 10, 8, "noteheadBlack")
SHARP = Box(80, 95, 7, 20, "keySharp")
DOT = Box(115, 102, 4, 4, "augmentationDot")


def test_one_annotator_gives_their_boxes_as_they_are():
    result = box_consensus({"ann": [HEAD, SHARP]})
    assert result.boxes == (HEAD, SHARP)
    assert result.decided_by == "single" and result.agreement is None
    assert not result.needs_review


def test_nobody_answered_or_all_skipped_gives_no_boxes():
    assert box_consensus({}).boxes is None
    skipped = box_consensus({"a": None, "b": None})
    assert skipped.boxes is None and skipped.answered == 0


def test_agreeing_annotators_give_the_mean_box_and_full_agreement():
    result = box_consensus(
        {"a": [HEAD, SHARP], "b": [nudge(HEAD, 1, 0), nudge(SHARP, 0, -1)], "c": [HEAD, SHARP]}
    )
    assert result.decided_by == "majority" and result.answered == 3
    head = next(b for b in result.boxes if b.label == "noteheadBlack")
    assert (head.x, head.y, head.w, head.h) == pytest.approx((100 + 1 / 3, 100, 10, 8))
    assert len(result.boxes) == 2
    assert result.agreement == pytest.approx(1.0)
    assert result.per_class == {"keySharp": 1.0, "noteheadBlack": 1.0}
    assert not result.needs_review
    assert all(k.votes == 3 for k in result.kept)


def test_a_box_only_one_of_three_drew_is_dropped_two_of_three_is_kept():
    result = box_consensus({"a": [HEAD, DOT], "b": [HEAD, DOT], "c": [HEAD, SHARP]})
    labels = sorted(b.label for b in result.boxes)
    assert labels == ["augmentationDot", "noteheadBlack"]
    assert [d.box.label for d in result.dropped] == ["keySharp"]
    assert result.dropped[0].annotators == ("c",)
    # Pairs: a-b agree fully, a-c and b-c share one box of two each.
    assert result.agreement == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert result.needs_review  # below 0.8
    assert result.per_class["noteheadBlack"] == 1.0
    assert result.per_class["keySharp"] == 0.0


def test_two_annotators_must_both_draw_a_box_and_a_skip_does_not_count():
    result = box_consensus({"a": [HEAD, DOT], "b": [HEAD], "c": None})
    assert result.answered == 2
    assert result.boxes == (HEAD,)
    assert result.agreement == pytest.approx(2 / 3)
    lenient = box_consensus({"a": [HEAD, DOT], "b": [HEAD]}, min_votes=1)
    assert len(lenient.boxes) == 2


def test_same_place_different_class_is_one_object_with_a_class_vote():
    accidental = nudge(SHARP, label="accidentalSharp")
    result = box_consensus({"a": [SHARP], "b": [accidental], "c": [SHARP]})
    (box,) = result.boxes
    assert box.label == "keySharp"
    assert result.kept[0].class_votes == {"keySharp": 2, "accidentalSharp": 1}
    assert result.confusions == {("accidentalSharp", "keySharp"): 2}
    assert result.per_class["keySharp"] == pytest.approx((1 + 0 + 0) / 3)
    # A tie on the class keeps the box and sends the page to review.
    tie = box_consensus({"a": [SHARP], "b": [accidental]})
    assert len(tie.boxes) == 1 and tie.kept[0].class_tie and tie.needs_review


def test_boxes_that_overlap_too_little_are_different_objects():
    far = nudge(HEAD, 6, 0)  # IoU 4*8 / (2*80 - 32) = 0.25
    result = box_consensus({"a": [HEAD], "b": [far]})
    assert result.boxes == () and len(result.dropped) == 2
    assert result.agreement == 0.0 and result.needs_review
    assert len(box_consensus({"a": [HEAD], "b": [far]}, iou_threshold=0.2).boxes) == 1


def test_two_empty_answers_agree_that_the_page_is_empty():
    result = box_consensus({"a": [], "b": []})
    assert result.boxes == () and result.agreement == 1.0 and not result.needs_review


def test_crowded_neighbours_are_matched_one_to_one():
    row = [Box(10 + 12 * i, 50, 10, 8, "noteheadBlack") for i in range(5)]
    shifted = [nudge(b, 2, 0) for b in row]
    pairs = greedy_match(row, shifted)
    assert pairs == [(i, i) for i in range(5)]
    result = box_consensus({"a": row, "b": shifted})
    assert len(result.boxes) == 5 and result.agreement == 1.0
    assert iou_matrix(row, []).shape == (5, 0)
