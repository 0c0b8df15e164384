"""`loupe_demo --dataset faces`: a pair project of synthetic faces, known people as labeled
pairs and the others' loose photos as pool pairs, the same files for the same seed."""

import hashlib

import pytest
from django.core.management import call_command

from loupe.datasets.models import Item, Split
from loupe.projects.demo import DEFAULT_IMAGES, demo_data_generate, demo_images
from loupe.projects.models import Project


def _fingerprint(folder):
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*.png"))
    }


def test_the_faces_are_the_same_for_the_same_seed_and_loose_photos_hide_who_they_are(
    tmp_path,
):
    first = demo_data_generate(dataset="faces", root=tmp_path / "a", n_images=60, seed=4)
    again = demo_data_generate(dataset="faces", root=tmp_path / "b", n_images=60, seed=4)
    other = demo_data_generate(dataset="faces", root=tmp_path / "c", n_images=60, seed=5)
    assert _fingerprint(first["folder"]) == _fingerprint(again["folder"])
    assert _fingerprint(first["folder"]) != _fingerprint(other["folder"])

    folder = first["folder"]
    people = sorted(p.name for p in folder.iterdir() if p.is_dir())
    loose = sorted(p.name for p in folder.glob("*.png"))
    assert len(people) == 5 and all(len(list((folder / p).iterdir())) == 6 for p in people)
    assert len(loose) == 30 and loose[0] == "photo-0001.png"
    assert first["classes"] == ["different", "same"]


def test_the_defaults_of_the_other_demos_are_unchanged():
    assert demo_images("inspection", None) == 1200
    assert demo_images("faces", None) == DEFAULT_IMAGES["faces"] == 240
    assert demo_images("faces", 90) == 90


@pytest.mark.django_db
def test_loupe_demo_faces_makes_a_pair_project_with_labeled_and_pool_pairs(
    import_root, settings, capsys
):
    settings.LOUPE_DEMO_DIR = import_root / "demo" / "data"
    call_command("loupe_demo", "--dataset", "faces", "--images", "120", "--seed", "2")

    project = Project.objects.get(slug="demo-faces")
    assert project.task_type == "pair_verification"
    items = Item.objects.filter(project=project)
    labeled = items.filter(ground_truth__isnull=False)
    assert labeled.filter(ground_truth__label_class__name="same").exists()
    assert labeled.filter(ground_truth__label_class__name="different").exists()
    assert labeled.filter(split=Split.HOLDOUT).exists()
    pool = items.filter(split=Split.POOL)
    assert pool.exists() and not pool.filter(ground_truth__isnull=False).exists()
    assert all(item.extra_files and item.extra_files[0] != item.file.name for item in items)
    out = capsys.readouterr().out
    assert "gate-a: succeeded" in out and "'demo-faces' is ready" in out

    # Running it again adds nothing.
    count = items.count()
    call_command("loupe_demo", "--dataset", "faces", "--images", "120", "--seed", "2")
    assert Item.objects.filter(project=project).count() == count


@pytest.mark.django_db
def test_loupe_demo_scores_makes_a_detection_project_of_boxed_and_pool_pages(
    import_root, settings, capsys
):
    from loupe.labeling.models import GroundTruth
    from loupe.projects.demo import SCORES_GUIDELINES
    from loupe.projects.selectors import project_classes, strategy_name
    from loupe.tasktypes.object_detection import answer_boxes
    from ml.synthetic_scores import CLASSES

    settings.LOUPE_DEMO_DIR = import_root / "demo" / "data"
    call_command("loupe_demo", "--dataset", "scores", "--images", "12", "--seed", "1")

    project = Project.objects.get(slug="demo-scores")
    assert project.task_type == "object_detection" and strategy_name(project) == "box_mean"
    assert [c.name for c in project_classes(project=project)] == list(CLASSES)
    assert project.guidelines == SCORES_GUIDELINES and "keySharp" in project.guidelines
    items = Item.objects.filter(project=project)
    assert items.count() == 12
    truths = list(GroundTruth.objects.filter(project=project))
    assert len(truths) == 4 and all(len(answer_boxes(t.answer)) > 20 for t in truths)
    # The scanned pages (the shift) all wait in the pool, with the unboxed clean ones.
    pool = items.filter(split=Split.POOL)
    assert pool.count() == 8 and not pool.filter(ground_truth__isnull=False).exists()
    out = capsys.readouterr().out
    assert "scanner-a: succeeded" in out and "'demo-scores' is ready" in out

    call_command("loupe_demo", "--dataset", "scores", "--images", "12", "--seed", "1")
    assert Item.objects.filter(project=project).count() == 12
