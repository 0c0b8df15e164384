import json

import pytest
from PIL import Image

from ml.detection_io import (
    Box,
    ImageBoxes,
    parse_coco,
    parse_yolo_folder,
    parse_yolo_labels,
    parse_yolo_names,
    to_coco,
    to_yolo,
    yolo_paths,
)
from ml.synthetic_scores import make_score_pages


def coco(annotations, images=None, categories=None):
    return {
        "images": images or [{"id": 7, "file_name": "p.png", "width": 100, "height": 80}],
        "annotations": annotations,
        "categories": categories or [{"id": 3, "name": "dot"}, {"id": 9, "name": "sharp"}],
    }


def ann(bbox, category_id=3, image_id=7, **extra):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, **extra}


def test_coco_round_trip_keeps_boxes_classes_and_ids(tmp_path):
    make_score_pages(tmp_path, pages=2, seed=1)
    original = json.loads((tmp_path / "annotations.json").read_text())
    parsed = parse_coco(original)
    assert parsed.rejected == [] and parsed.clipped == []
    written = to_coco(parsed.images, parsed.classes, category_ids=parsed.category_ids)
    assert written["categories"] == [
        {"id": c["id"], "name": c["name"]} for c in original["categories"]
    ]
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in written["images"]] == [
        (i["id"], i["file_name"], i["width"], i["height"]) for i in original["images"]
    ]

    def boxes(data):
        return [(a["image_id"], a["category_id"], a["bbox"]) for a in data["annotations"]]

    assert boxes(written) == boxes(original)
    # And once more through the neutral form: nothing drifts.
    assert parse_coco(written).images == parsed.images


def test_each_bad_coco_box_is_rejected_with_its_reason_and_the_rest_kept():
    data = coco(
        [
            ann([10, 10, 5, 5]),  # 0 kept
            ann([200, 10, 5, 5]),  # 1 entirely outside
            ann([93, 10, 20, 5]),  # 2 over half of it outside
            ann([92, 10, 10, 5]),  # 3 20% outside: clipped, reported
            ann([10, 76, 5, 4.4]),  # 4 0.4 px over the border: clipped silently
            ann([10, 10, 0, 5]),  # 5 zero width
            ann([10, 10, 5, -2]),  # 6 negative height
            ann([10, 10, 5, 5], category_id=4),  # 7 unknown class
            ann([10, 10, 5]),  # 8 three numbers
            ann(["a", 1, 2, 3]),  # 9 not numbers
            ann([10, float("nan"), 2, 3]),  # 10 not finite
            ann([10, 10, 5, 5], image_id=99),  # 11 no such image
            ann([10, 10, 5, 5], iscrowd=1),  # 12 crowd region
            ann([20, 20, 4, 4], category_id=9, score=0.7),  # 13 kept, with its score
        ]
    )
    result = parse_coco(data)
    reasons = {p.row: p.reason for p in result.rejected}
    assert reasons == {
        1: "outside_image",
        2: "outside_image",
        5: "zero_area",
        6: "zero_area",
        7: "unknown_class",
        8: "malformed",
        9: "malformed",
        10: "malformed",
        11: "malformed",
        12: "crowd",
    }
    assert all(p.message for p in result.rejected)
    assert [p.row for p in result.clipped] == [3]
    (image,) = result.images
    assert image.boxes == (
        Box(10, 10, 5, 5, "dot"),
        Box(92, 10, 8, 5, "dot"),
        Box(10, 76, 5, 4, "dot"),
        Box(20, 20, 4, 4, "sharp", score=0.7),
    )
    # A stricter rule keeps only boxes entirely inside.
    strict = parse_coco(data, min_inside=1.0)
    assert {p.row for p in strict.rejected if p.reason == "outside_image"} == {1, 2, 3}


def test_which_pages_count_as_labeled():
    images = [
        {"id": 1, "file_name": "kept.png", "width": 50, "height": 50},
        {"id": 2, "file_name": "all_bad.png", "width": 50, "height": 50},
        {"id": 3, "file_name": "no_rows.png", "width": 50, "height": 50},
        {"id": 4, "file_name": "no_size.png"},
    ]
    data = coco([ann([1, 1, 4, 4], image_id=1), ann([1, 1, 0, 4], image_id=2)], images=images)
    result = parse_coco(data)
    labeled = {i.file_name: i.boxes for i in result.images}
    assert labeled == {
        "kept.png": (Box(1, 1, 4, 4, "dot"),),
        "all_bad.png": None,
        "no_rows.png": None,
    }
    assert ("no_size.png", "malformed") in {(p.file_name, p.reason) for p in result.rejected}
    empty = parse_coco(data, images_without_boxes="empty")
    assert {i.file_name: i.boxes for i in empty.images}["no_rows.png"] == ()
    # Pages without any boxes at all: an import of pages to label.
    pages_only = parse_coco({"images": images[:3], "categories": data["categories"]})
    assert [i.labeled for i in pages_only.images] == [False, False, False]
    assert pages_only.classes == ["dot", "sharp"]


def write_page(path, size=(200, 100)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, 255).save(path)


def test_yolo_folder_reads_boxes_in_pixels_and_rejects_bad_rows(tmp_path):
    write_page(tmp_path / "images" / "train" / "a.png")
    write_page(tmp_path / "images" / "train" / "b.png")
    write_page(tmp_path / "images" / "val" / "c.png")
    write_page(tmp_path / "images" / "val" / "d.png")
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "val").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "a.txt").write_text(
        "0 0.5 0.5 0.1 0.2\n"  # 1 kept: 20x20 px at the centre
        "1 0.25 0.25 0.05 0.1 0.9\n"  # 2 kept, with a confidence
        "5 0.5 0.5 0.1 0.1\n"  # 3 no class 5
        "0.5 0.5 0.5 0.1 0.1\n"  # 4 no class 0.5
        "0 0.5 0.5 0.1\n"  # 5 four numbers
        "0 x 0.5 0.1 0.1\n"  # 6 not a number
        "\n"
        "0 0.5 0.5 0 0.1\n"  # 8 zero width
        "0 1.5 0.5 0.1 0.1\n"  # 9 outside
        "0 0.99 0.5 0.04 0.1\n"  # 10 a quarter outside: clipped
    )
    (tmp_path / "labels" / "train" / "b.txt").write_text("")  # a background page
    (tmp_path / "labels" / "val" / "d.txt").write_text("7 0.5 0.5 0.1 0.1\n")  # all bad
    (tmp_path / "data.yaml").write_text(
        "path: .\ntrain: images/train\nnames:\n  0: dot\n  1: sharp\n"
    )
    result = parse_yolo_folder(tmp_path)
    assert result.classes == ["dot", "sharp"]
    images = {i.file_name: i for i in result.images}
    assert set(images) == {
        "images/train/a.png",
        "images/train/b.png",
        "images/val/c.png",
        "images/val/d.png",
    }
    a = images["images/train/a.png"]
    assert (a.width, a.height) == (200, 100)
    assert a.boxes[0].label == "dot"
    assert a.boxes[0].xyxy() == pytest.approx((90, 40, 110, 60))
    assert a.boxes[1].label == "sharp" and a.boxes[1].score == pytest.approx(0.9)
    assert a.boxes[2].x + a.boxes[2].w == 200  # clipped at the right edge
    assert len(a.boxes) == 3
    reasons = {(p.file_name, p.row): p.reason for p in result.rejected}
    assert reasons == {
        ("images/train/a.png", 3): "unknown_class",
        ("images/train/a.png", 4): "unknown_class",
        ("images/train/a.png", 5): "malformed",
        ("images/train/a.png", 6): "malformed",
        ("images/train/a.png", 8): "zero_area",
        ("images/train/a.png", 9): "outside_image",
        ("images/val/d.png", 1): "unknown_class",
    }
    assert [(p.file_name, p.row) for p in result.clipped] == [("images/train/a.png", 10)]
    assert images["images/train/b.png"].boxes == ()  # empty file: labeled, nothing on it
    assert images["images/val/c.png"].boxes is None  # no label file: to be labeled
    assert images["images/val/d.png"].boxes is None  # every row bad: to be labeled


def test_yolo_written_and_read_back_gives_the_same_boxes(tmp_path):
    pages = [
        ImageBoxes(
            "p1.png", 300, 200, (Box(10.5, 20.25, 6, 8, "keySharp"), Box(100, 50, 9, 7, "dot"))
        ),
        ImageBoxes("p2.png", 300, 200, ()),
        ImageBoxes("p3.png", 300, 200, None),
    ]
    classes = ["dot", "keySharp"]
    files = to_yolo(pages, classes)
    assert set(files) == {"labels/p1.txt", "labels/p2.txt", "data.yaml"}
    assert files["labels/p2.txt"] == ""
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    for page in pages:
        write_page(tmp_path / yolo_paths(page.file_name)[0], (300, 200))
    back = {i.file_name: i for i in parse_yolo_folder(tmp_path).images}
    read = back["images/p1.png"].boxes
    assert [b.label for b in read] == ["keySharp", "dot"]
    for got, wrote in zip(read, pages[0].boxes, strict=True):
        assert got.xyxy() == pytest.approx(wrote.xyxy(), abs=1e-3)
    assert back["images/p2.png"].boxes == ()
    assert back["images/p3.png"].boxes is None


def test_yolo_names_files_in_their_usual_forms():
    assert parse_yolo_names("names: ['a', \"b\", c]\nnc: 3\n") == ["a", "b", "c"]
    assert parse_yolo_names("nc: 2\nnames:\n  - keySharp\n  - dot\ntrain: x\n") == [
        "keySharp",
        "dot",
    ]
    assert parse_yolo_names("names:\n  1: b\n  0: a\n") == ["a", "b"]
    assert parse_yolo_names("gClef\nkeySharp\n\n") == ["gClef", "keySharp"]
    with pytest.raises(ValueError):
        parse_yolo_names("nc: 2\ntrain: images\n")


def test_yolo_labels_of_one_page_without_a_folder():
    image, rejected, clipped = parse_yolo_labels(
        "0 0.5 0.5 0.5 0.5\n3 0.5 0.5 0.1 0.1\n",
        file_name="x.png",
        width=40,
        height=20,
        classes=["a"],
    )
    assert image.boxes == (Box(10, 5, 20, 10, "a"),)
    assert [p.reason for p in rejected] == ["unknown_class"] and clipped == []
    missing, _, _ = parse_yolo_labels(None, file_name="y.png", width=4, height=4, classes=["a"])
    assert missing.boxes is None
