"""Labeling configs, task payloads and webhook parsing, without a server.

The webhook bodies below are trimmed copies of what Label Studio 1.23.2 sent to a receiver
(see docs/label-studio.md); `project` is cut to its id.
"""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from loupe.labeling.ls_payloads import (
    MalformedWebhook,
    PushNeighbour,
    PushPrediction,
    PushTask,
    choices_result,
    chosen_classes,
    label_stream_url,
    labeling_config,
    local_file_url,
    parse_webhook,
    task_payload,
    task_url,
)

TASK = {"id": 3, "data": {"image": "x", "loupe_item_id": 13, "loupe_round_id": 2}}


def annotation(**overrides):
    body = {
        "id": 3,
        "result": choices_result(["cat"]),
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": "2026-11-28T23:44:17.155698Z",
        "updated_at": "2026-11-28T23:44:17.155757Z",
        "lead_time": 2.0,
        "task": 3,
        "project": 1,
        "completed_by": 1,
    }
    return {**body, **overrides}


def controls(config):
    """The config's tags by name (the first of each), wherever the layout puts them."""
    found = {}
    for element in ET.fromstring(config).iter():
        found.setdefault(element.tag, element)
    return found


def test_single_label_config_offers_each_class_once_as_a_single_choice():
    root = controls(labeling_config("image_classification", ["cat", "dog"]))
    choices = root["Choices"]
    assert choices.get("choice") == "single"
    assert choices.get("toName") == root["Image"].get("name")
    assert [c.get("value") for c in choices] == ["cat", "dog"]
    assert root["Image"].get("value") == "$image"


def test_config_shows_why_the_item_was_picked_and_the_guidelines_in_a_closed_panel():
    config = labeling_config("image_classification", ["cat"], "Look at the ears.\n\nNot the tail.")
    root = ET.fromstring(config)
    panel = root.find(".//Collapse/Panel")
    assert panel.get("value") == "Guidelines"
    assert [h.get("value") for h in panel.findall("Header")] == [
        "Look at the ears.",
        "Not the tail.",
    ]
    assert root.find(".//Text").get("value") == "$loupe_reason"
    assert (
        ET.fromstring(labeling_config("image_classification", ["cat"])).find(".//Collapse") is None
    )


def test_the_image_sits_beside_the_choices_at_a_bounded_size():
    image_side, answer_side = ET.fromstring(labeling_config("image_classification", ["a", "b"]))
    image = image_side.find("Image")
    assert (image.get("maxWidth"), image.get("maxHeight")) == ("512px", "512px")
    assert image.get("smoothing") is None  # the annotator's own setting
    assert answer_side.find("Choices").get("showInline") == "false"
    assert "display: flex" in ET.fromstring(labeling_config("image_classification", ["a"])).get(
        "style"
    )


@pytest.mark.parametrize(("side", "smoothing"), [(64, "false"), (256, "false"), (1024, None)])
def test_small_images_are_enlarged_with_crisp_pixels(side, smoothing):
    config = labeling_config("image_classification", ["a"], image_px=side)
    assert controls(config)["Image"].get("smoothing") == smoothing


def test_class_names_with_markup_characters_survive_the_xml():
    odd = 'a "quoted" & <odd> class'
    choices = controls(labeling_config("image_classification", [odd, "b"]))["Choices"]
    assert choices[0].get("value") == odd


def test_multi_label_and_detection_configs():
    assert controls(labeling_config("image_multi_label", ["a", "b"]))["Choices"].get("choice") == (
        "multiple"
    )
    rect = controls(labeling_config("object_detection", ["car"]))["RectangleLabels"]
    assert [label.get("value") for label in rect] == ["car"]
    # A page of tiny objects is shown larger than an image to classify.
    page = controls(labeling_config("object_detection", ["car"]))["Image"]
    assert (page.get("maxWidth"), page.get("maxHeight")) == ("960px", "960px")


@pytest.mark.parametrize(
    ("task_type", "classes"),
    [("image_classification", []), ("image_classification", ["a", "a"]), ("video", ["a"])],
)
def test_config_rejects_what_label_studio_could_not_serve(task_type, classes):
    with pytest.raises(ValueError):
        labeling_config(task_type, classes)


def test_task_payload_carries_item_round_reason_and_prediction():
    task = PushTask(
        item_id=7,
        round_id=2,
        image=local_file_url("items/ab/a b.png"),
        reason="low margin",
        prediction=PushPrediction(choices_result(["dog"]), 0.61, "run-4"),
    )
    payload = task_payload(task)
    assert payload["data"] == {
        "image": "/data/local-files/?d=items/ab/a%20b.png",
        "loupe_reason": "low margin",
        "loupe_item_id": 7,
        "loupe_round_id": 2,
        # A pick without explanation: nothing to show, and every field the config reads.
        "loupe_saliency": "",
        "loupe_neighbours": [],
        "loupe_explanation": "",
    }
    assert payload["predictions"] == [
        {"result": choices_result(["dog"]), "score": 0.61, "model_version": "run-4"}
    ]
    assert "predictions" not in task_payload(PushTask(item_id=1, round_id=1, image="u"))


def test_task_payload_carries_the_saliency_overlay_and_the_nearest_labeled_items():
    task = PushTask(
        item_id=7,
        round_id=2,
        image=local_file_url("items/ab/ab.png"),
        saliency=local_file_url("explain/line/v3/item-7.png"),
        explained_class="scratch",
        neighbours=(
            PushNeighbour(item_id=11, label="scratch", image=local_file_url("items/11.png")),
            PushNeighbour(item_id=12, label="<b>dent</b>", image=local_file_url("items/12.png")),
        ),
    )

    data = task_payload(task)["data"]

    assert data["loupe_saliency"] == "/data/local-files/?d=explain/line/v3/item-7.png"
    assert data["loupe_neighbours"] == [
        {"item_id": 11, "label": "scratch", "image": "/data/local-files/?d=items/11.png"},
        {"item_id": 12, "label": "<b>dent</b>", "image": "/data/local-files/?d=items/12.png"},
    ]
    shown = ET.fromstring(data["loupe_explanation"])  # well-formed, so the markup is ours
    sources = [img.get("src") for img in shown.iter("img")]
    assert sources == [
        "/data/local-files/?d=explain/line/v3/item-7.png",
        "/data/local-files/?d=items/11.png",
        "/data/local-files/?d=items/12.png",
    ]
    text = " ".join(shown.itertext())
    assert "What the model looked at to say scratch" in text
    assert "Looks like these labeled items" in text
    assert "<b>dent</b>" in text and shown.find(".//b") is None  # a class name stays text


def test_the_explanation_sits_under_the_reason_beside_the_image():
    config = labeling_config("image_classification", ["a", "b"], "Guidelines here.")
    _, answer_side = ET.fromstring(config)
    tags = [child.tag for child in answer_side]

    explanation = answer_side.find("HyperText")
    assert explanation.get("value") == "$loupe_explanation"
    assert tags.index("Choices") < tags.index("Text") < tags.index("HyperText")
    assert tags.index("HyperText") < tags.index("Collapse")


def test_deep_links():
    assert task_url("http://ls:8080/", 4, 9) == "http://ls:8080/projects/4/data/?task=9"
    assert label_stream_url("http://ls:8080", 4) == "http://ls:8080/projects/4/data?labeling=1"


def test_chosen_classes_reads_choices_and_rectangles_of_our_control_only():
    result = [
        *choices_result(["cat", "dog"]),
        {"from_name": "label", "type": "rectanglelabels", "value": {"rectanglelabels": ["cat"]}},
        {"from_name": "other", "type": "choices", "value": {"choices": ["x"]}},
    ]
    assert chosen_classes(result) == ["cat", "dog"]


def test_annotation_created_gives_the_item_class_and_times():
    event = parse_webhook(
        {
            "action": "ANNOTATION_CREATED",
            "annotation": annotation(),
            "task": TASK,
            "project": {"id": 1},
        }
    )
    assert event.action == "ANNOTATION_CREATED"
    assert event.project_id == 1
    (record,) = event.annotations
    assert (record.id, record.task_id, record.item_id, record.round_id) == (3, 3, 13, 2)
    assert record.classes == ["cat"]
    assert record.completed_by == 1
    assert record.lead_time == 2.0
    assert not record.was_cancelled
    assert record.updated_at == datetime(2026, 11, 28, 23, 44, 17, 155757, tzinfo=UTC)


def test_skipped_annotation_is_cancelled_without_class():
    event = parse_webhook(
        {
            "action": "ANNOTATION_CREATED",
            "annotation": annotation(id=4, result=[], was_cancelled=True),
            "task": TASK,
        }
    )
    assert event.annotations[0].was_cancelled
    assert event.annotations[0].classes == []


def test_bulk_created_annotations_are_matched_to_their_tasks():
    other_task = {"id": 4, "data": {"loupe_item_id": 14, "loupe_round_id": 2}}
    event = parse_webhook(
        {
            "action": "ANNOTATIONS_CREATED",
            "annotation": [annotation(id=7), annotation(id=8, task=4)],
            "task": [TASK, other_task],
        }
    )
    assert [(r.id, r.item_id) for r in event.annotations] == [(7, 13), (8, 14)]


def test_deletions():
    deleted = parse_webhook({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 6}]})
    assert deleted.deleted_annotation_ids == [6]
    tasks = parse_webhook({"action": "TASKS_DELETED", "tasks": [{"id": 3}, {"id": 5}]})
    assert tasks.deleted_task_ids == [3, 5]


def test_actions_loupe_does_not_use_carry_no_changes():
    event = parse_webhook({"action": "PROJECT_UPDATED", "project": {"id": 2}})
    assert (event.annotations, event.deleted_annotation_ids, event.deleted_task_ids) == ([], [], [])


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "ANNOTATION_CREATED",
        {},
        {"action": ""},
        {"action": "ANNOTATION_CREATED"},
        {"action": "ANNOTATION_CREATED", "annotation": "x"},
        {"action": "ANNOTATION_UPDATED", "annotation": {"result": []}},
        {"action": "ANNOTATION_UPDATED", "annotation": annotation(result="cat")},
        {"action": "ANNOTATION_UPDATED", "annotation": annotation(updated_at="yesterday")},
        {"action": "ANNOTATIONS_DELETED", "annotations": [{"pk": 1}]},
        {"action": "TASKS_DELETED"},
    ],
)
def test_malformed_bodies_raise_a_value_error(body):
    with pytest.raises(MalformedWebhook) as info:
        parse_webhook(body)
    assert isinstance(info.value, ValueError)
