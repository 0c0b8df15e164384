"""Selection knows what is already labeled: diversity-based picks stay away from the items
the model trained on and from items taken since the pool was scored."""

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from loupe.datasets.models import Item, ItemState
from loupe.learning.models import ScoringChunk, ScoringRun
from loupe.learning.selection import selection_round_create
from loupe.projects.services import project_create
from ml import artifacts
from ml.artifacts import ItemArrays
from tests.factories import ItemFactory
from tests.platform.insights.builders import version

pytestmark = pytest.mark.django_db


def artifact_bytes(**arrays) -> bytes:
    return artifacts.save(ItemArrays(**arrays))


@pytest.fixture
def scored_pool():
    """20 pool items near the labeled set (cluster A) and 20 far from it (cluster B), all
    equally uncertain; the version trained on 30 items sitting in cluster A."""
    project = project_create(
        name="Near", created_by=None, classes=["good", "scratch"], control_fraction=0.0
    )
    project.strategy = "coreset"
    project.save()
    items = [ItemFactory(project=project) for _ in range(40)]
    rng = np.random.default_rng(0)
    near = rng.normal(0.0, 0.3, size=(20, 8))
    far = rng.normal(0.0, 0.3, size=(20, 8)) + 6.0
    embeddings = np.concatenate([near, far]).astype(np.float32)
    v = version(project, 1, labels_used=30, bal_acc=0.7, base=0.5)
    v.train_embeddings = f"models/{project.slug}/train{artifacts.SUFFIX}"
    v.save()
    default_storage.save(
        v.train_embeddings.name,
        ContentFile(
            artifact_bytes(
                item_ids=np.arange(30),
                embeddings=rng.normal(0.0, 0.3, size=(30, 8)).astype(np.float32),
            )
        ),
    )
    run = ScoringRun.objects.create(project=project, model_version=v, status="succeeded")
    artifact = f"scoring/{project.slug}/chunk-0{artifacts.SUFFIX}"
    default_storage.save(
        artifact,
        ContentFile(
            artifact_bytes(
                item_ids=np.array([i.pk for i in items], dtype=np.int64),
                probs=np.full((40, 2), 0.5, dtype=np.float32),
                embeddings=embeddings,
            )
        ),
    )
    ScoringChunk.objects.create(
        scoring_run=run, index=0, status="succeeded", artifact=artifact, item_ids=[]
    )
    return project, run, items


def test_diversity_picks_stay_away_from_what_the_model_trained_on(scored_pool):
    project, run, items = scored_pool
    far = {i.pk for i in items[20:]}

    picks = selection_round_create(project=project, scoring_run=run, batch_size=5)

    chosen = set(picks.items.values_list("item_id", flat=True))
    assert len(chosen) == 5 and chosen <= far


def test_items_taken_since_scoring_count_as_labeled(scored_pool):
    """Cluster B was picked (now in annotation) after scoring, except three of its items:
    those three sit next to items experts already have, so the picks come from cluster A."""
    project, run, items = scored_pool
    v = run.model_version
    default_storage.delete(v.train_embeddings.name)
    v.train_embeddings = ""
    v.save()
    taken = [i.pk for i in items[23:]]
    Item.objects.filter(pk__in=taken).update(state=ItemState.IN_ANNOTATION)

    picks = selection_round_create(project=project, scoring_run=run, batch_size=3)

    chosen = set(picks.items.values_list("item_id", flat=True))
    # Without the taken items as centres, k-center would take one of cluster B's three
    # open items (the farthest from cluster A); with them, those are already covered.
    assert len(chosen) == 3 and chosen <= {i.pk for i in items[:20]}


def test_unreadable_training_embeddings_do_not_stop_selection(scored_pool, caplog):
    project, run, _ = scored_pool
    name = run.model_version.train_embeddings.name
    default_storage.delete(name)
    default_storage.save(name, ContentFile(b"not an npz"))

    picks = selection_round_create(project=project, scoring_run=run, batch_size=4)

    assert picks.items.count() == 4
    assert "training embeddings of v1 unreadable" in caplog.text


def test_reasons_read_in_plain_words():
    import numpy as np

    from loupe.learning.selection import pick_reason

    names = ["good", "scratch", "dent"]
    hesitant = pick_reason(np.array([0.48, 0.41, 0.11]), names, control=False, labels_used=500)
    assert hesitant == "the model hesitates between good (48%) and scratch (41%)"
    rare = pick_reason(
        np.array([0.05, 0.05, 0.9]),
        names,
        control=False,
        labels_used=500,
        class_counts={"good": 400, "scratch": 60, "dent": 7},
    )
    assert rare == "the model says dent (90%), a class with only 7 labels so far"
    control = pick_reason(np.array([0.9, 0.05, 0.05]), names, control=True, labels_used=500)
    assert control.startswith("picked at random")
    early = pick_reason(np.array([0.5, 0.3, 0.2]), names, control=False, labels_used=40)
    assert "an early model, trained on 40 labels" in early
    assert "score" not in hesitant + rare + control + early  # no jargon


def test_a_cold_start_covers_a_rare_kind_of_image(db, settings):
    """Without a model, the first batch takes a typical item of each kind of image: a tenth
    of the pool that looks different is in it (a random batch of 4 misses it two times in
    three)."""
    import io
    from pathlib import Path

    from PIL import Image

    from loupe.datasets.models import ItemState
    from loupe.learning.selection import selection_round_create
    from loupe.projects.services import project_create
    from tests.factories import ItemFactory

    project = project_create(
        name="Cold", created_by=None, classes=["a", "b"], batch_size=4, image_size=16
    )
    rare = []
    for i in range(60):
        item = ItemFactory(project=project)
        bright = i % 10 == 3
        shade = (230, 230, 40) if bright else (20 + i % 7, 30, 40 + i % 5)
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), shade).save(buffer, format="PNG")
        path = Path(settings.MEDIA_ROOT) / item.file.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
        if bright:
            rare.append(item.pk)

    chosen = selection_round_create(project=project)
    picked = set(chosen.items.values_list("item_id", flat=True))
    assert chosen.strategy == "cold_start" and len(picked) == 4
    assert picked & set(rare)
    assert chosen.items.first().reason.startswith("first batch, before any model")
    assert project.items.filter(state=ItemState.QUEUED).count() == 4
