"""Boxes to and from Label Studio's RectangleLabels results: percent coordinates of the
original image, a score per predicted box, and back to pixels without loss."""

import pytest

from loupe.labeling.ls_payloads import Box, rectangles_result, result_boxes


def test_boxes_go_to_percent_coordinates_and_come_back_in_pixels():
    boxes = [Box(10, 20, 4, 6, "accidentalSharp", 0.83), Box(700, 1000, 12, 8, "keySharp")]
    result = rectangles_result(boxes, image_width=800, image_height=1100)

    first = result[0]
    assert first["type"] == "rectanglelabels"
    assert (first["original_width"], first["original_height"]) == (800, 1100)
    assert first["value"]["x"] == pytest.approx(1.25) and first["value"]["width"] == 0.5
    assert first["value"]["rectanglelabels"] == ["accidentalSharp"]
    assert first["score"] == 0.83 and "score" not in result[1]  # an expert's box has none
    back = result_boxes(result)
    for got, want in zip(back, boxes, strict=True):
        assert got.label == want.label and got.score == want.score
        assert (got.x, got.y, got.width, got.height) == pytest.approx(
            (want.x, want.y, want.width, want.height)
        )


def test_unusable_regions_are_left_out_and_a_rotated_box_becomes_the_box_around_it():
    good = rectangles_result([Box(100, 100, 20, 10, "rest")], image_width=200, image_height=200)
    no_label = {**good[0], "value": {**good[0]["value"], "rectanglelabels": []}}
    no_size = {k: v for k, v in good[0].items() if k != "original_width"}
    other = {**good[0], "from_name": "comment"}
    rotated = {**good[0], "value": {**good[0]["value"], "rotation": 90}}

    assert result_boxes([no_label, no_size, other, "junk"]) == []
    (upright,) = result_boxes([rotated])
    # 90 degrees around the top-left corner: 20 wide becomes 20 tall, to the left.
    assert (upright.x, upright.y, upright.width, upright.height) == pytest.approx((90, 100, 10, 20))
    with pytest.raises(ValueError, match="positive width"):
        rectangles_result([], image_width=0, image_height=10)
