import json

import numpy as np
import pytest
from PIL import Image

from ml.detection_io import load_coco
from ml.synthetic_scores import CLASSES, CONTEXT_PAIRS, make_score_pages, render_page

NOTEHEADS = ("noteheadBlack", "noteheadHalf", "noteheadWhole")


def read_all(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def page_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("scores")
    summary = make_score_pages(root, pages=8, scanned_fraction=0.25, seed=0)
    return root, summary, json.loads((root / "annotations.json").read_text())


def by_staff(coco, image_index):
    """Boxes of one page grouped by the staff nearest to their centre, with its interline."""
    image = coco["images"][image_index]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    staves = image["staves"]
    groups = [[] for _ in staves]
    for ann in coco["annotations"]:
        if ann["image_id"] != image["id"]:
            continue
        x, y, w, h = ann["bbox"]
        cy = y + h / 2
        nearest = int(np.argmin([abs(cy - (top + bottom) / 2) for top, bottom in staves]))
        groups[nearest].append((names[ann["category_id"]], x, y, w, h))
    return [
        ((bottom - top) / 4, boxes) for (top, bottom), boxes in zip(staves, groups, strict=True)
    ]


def test_pages_are_deterministic_by_seed(tmp_path):
    make_score_pages(tmp_path / "a", pages=2, scanned_fraction=0.5, seed=5)
    make_score_pages(tmp_path / "b", pages=2, scanned_fraction=0.5, seed=5)
    make_score_pages(tmp_path / "c", pages=2, scanned_fraction=0.5, seed=6)
    files = read_all(tmp_path / "a")
    assert len(files) == 3  # two pages and the annotations
    assert files == read_all(tmp_path / "b")
    assert files != read_all(tmp_path / "c")


def test_the_coco_file_names_every_page_and_box_inside_it(page_set):
    root, summary, coco = page_set
    assert summary["n_images"] == len(coco["images"]) == 8
    assert [c["name"] for c in coco["categories"]] == list(CLASSES)
    assert len(summary["scanned"]) == 2
    for image in coco["images"]:
        with Image.open(root / image["file_name"]) as im:
            assert im.size == (image["width"], image["height"]) == (768, 1024)
    sizes = {i["id"]: (i["width"], i["height"]) for i in coco["images"]}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        width, height = sizes[ann["image_id"]]
        assert w > 0 and h > 0 and ann["iscrowd"] == 0
        assert x >= 0 and x + w <= width and y >= 0 and y + h <= height
        assert ann["area"] == pytest.approx(w * h, abs=0.05)
    # The reader of imports takes the file as it is: nothing rejected, every box kept.
    parsed = load_coco(root / "annotations.json")
    assert parsed.rejected == [] and parsed.n_boxes == summary["n_boxes"]


def test_symbols_are_tiny_and_each_box_holds_ink(page_set):
    root, _, coco = page_set
    names = {c["id"]: c["name"] for c in coco["categories"]}
    pixels = {i["id"]: np.asarray(Image.open(root / i["file_name"])) for i in coco["images"]}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        crop = pixels[ann["image_id"]][int(y) : int(np.ceil(y + h)), int(x) : int(np.ceil(x + w))]
        assert crop.min() < 128, f"an empty {names[ann['category_id']]} box"
        if names[ann["category_id"]] not in ("gClef", "fClef", "barline"):
            assert max(w, h) <= 26
    dots = [a["bbox"] for a in coco["annotations"] if "Dot" in names[a["category_id"]]]
    assert max(max(w, h) for _, _, w, h in dots) <= 6


def test_classes_are_imbalanced_with_notes_most_frequent(page_set):
    _, summary, _ = page_set
    counts = summary["counts"]
    assert set(counts) == set(CLASSES) and all(n > 0 for n in counts.values())
    assert max(counts, key=counts.get) == "noteheadBlack"
    for rare in ("noteheadWhole", "accidentalNatural", "staccatoDot", "restWhole", "fClef"):
        assert counts["noteheadBlack"] > 10 * counts[rare]


def test_context_pairs_look_the_same_on_a_page(page_set):
    """Boxes of both classes of a pair have one size on a page: only the context tells."""
    _, _, coco = page_set
    names = {c["id"]: c["name"] for c in coco["categories"]}
    compared = set()
    for image in coco["images"]:
        if image["scanned"]:
            continue  # rotation grows boxes by their place on the page
        sizes = {}
        for ann in coco["annotations"]:
            if ann["image_id"] == image["id"]:
                sizes.setdefault(names[ann["category_id"]], []).append(ann["bbox"][2:])
        for pair in CONTEXT_PAIRS:
            if all(name in sizes for name in pair):
                first, second = (np.array(sizes[name]).mean(axis=0) for name in pair)
                assert np.abs(first - second).max() <= 0.8, pair
                compared.add(pair)
    assert len(compared) >= 3


def test_key_signature_stands_between_clef_and_first_note(page_set):
    _, _, coco = page_set
    seen = 0
    for index in range(len(coco["images"])):
        for _, boxes in by_staff(coco, index):
            clefs = [b for b in boxes if b[0] in ("gClef", "fClef")]
            keys = [b for b in boxes if b[0] in ("keySharp", "keyFlat")]
            assert len(clefs) == 1
            if not keys:
                continue
            seen += 1
            first_note = min(b[1] for b in boxes if b[0] in NOTEHEADS)
            clef_right = clefs[0][1] + clefs[0][3]
            for _, x, _, w, _ in keys:
                assert clef_right <= x and x + w < first_note
            assert len({k[0] for k in keys}) == 1  # a key is all sharps or all flats
    assert seen > 0


def test_accidentals_stand_right_before_a_notehead_at_its_height(page_set):
    _, _, coco = page_set
    for index in range(len(coco["images"])):
        for s, boxes in by_staff(coco, index):
            heads = [b for b in boxes if b[0] in NOTEHEADS]
            for label, x, y, w, h in boxes:
                if not label.startswith("accidental"):
                    continue
                right = x + w
                assert any(
                    0 <= hx - right <= 0.6 * s and y <= hy + hh / 2 <= y + h
                    for _, hx, hy, _, hh in heads
                ), f"{label} with no notehead right after it"


def test_augmentation_dots_sit_right_of_a_notehead_staccato_dots_above_or_below(page_set):
    _, _, coco = page_set
    for index in range(len(coco["images"])):
        for s, boxes in by_staff(coco, index):
            heads = [b for b in boxes if b[0] in NOTEHEADS]
            for label, x, y, w, h in boxes:
                cx, cy = x + w / 2, y + h / 2
                if label == "augmentationDot":
                    assert any(
                        0 < cx - (hx + hw) <= 1.0 * s and abs(cy - (hy + hh / 2)) <= 0.6 * s
                        for _, hx, hy, hw, hh in heads
                    )
                elif label == "staccatoDot":
                    assert any(
                        abs(cx - (hx + hw / 2)) <= 0.2 * s
                        and 0.9 * s <= abs(cy - (hy + hh / 2)) <= 1.6 * s
                        for _, hx, hy, hw, hh in heads
                    )


def test_a_scanned_page_is_the_same_music_seen_through_a_scanner():
    clean = render_page(seed=3, width=512, height=640)
    scanned = render_page(seed=3, width=512, height=640, scanned=True)
    assert [b.label for b in clean.boxes] == [b.label for b in scanned.boxes]
    a, b = np.asarray(clean.image, float), np.asarray(scanned.image, float)
    assert np.median(a) == 255 and np.median(b) < 250  # grey paper
    assert np.abs(a - b).mean() > 10
    moved = [
        abs(c.x - s.x) + abs(c.y - s.y) for c, s in zip(clean.boxes, scanned.boxes, strict=True)
    ]
    assert max(moved) > 1  # the page is turned a little, the boxes with it
    for box in scanned.boxes:
        crop = b[int(box.y) : int(np.ceil(box.y + box.h)), int(box.x) : int(np.ceil(box.x + box.w))]
        assert crop.min() < 140


def test_clean_and_scanned_sets_of_one_seed_share_no_page(tmp_path):
    clean = make_score_pages(tmp_path / "clean", pages=2, seed=0)
    scanned = make_score_pages(tmp_path / "scanned", pages=2, scanned_fraction=1.0, seed=0)
    assert len(scanned["scanned"]) == 2 and clean["scanned"] == []
    assert clean["counts"] != scanned["counts"]


def test_page_size_is_configurable_and_a_tiny_page_is_refused():
    page = render_page(seed=1, width=1024, height=1400)
    assert page.image.size == (1024, 1400) and len(page.staves) >= 12
    with pytest.raises(ValueError):
        render_page(seed=1, width=200, height=200)


def test_stems_are_boxed_only_when_asked():
    plain = render_page(seed=2)
    with_stems = render_page(seed=2, annotate_stems=True)
    assert "stem" not in {b.label for b in plain.boxes}
    stems = [b for b in with_stems.boxes if b.label == "stem"]
    stemmed = [b for b in with_stems.boxes if b.label in ("noteheadBlack", "noteheadHalf")]
    assert len(stems) == len(stemmed) > 0
    assert all(b.h > 3 * with_stems.interline for b in stems)
