"""Insights of a project that really trained and scored: drift from the model's embeddings
(computed once, then cached) and the learning curve of the real model version."""

import pytest
from django.core.files.storage import default_storage

from loupe.insights import selectors
from loupe.learning.loop import loop_start
from loupe.learning.models import ModelVersion

pytestmark = pytest.mark.django_db


def test_drift_is_measured_on_embeddings_and_cached(
    inspection_project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        loop_start(project=inspection_project)

    first = selectors.drift(project=inspection_project)

    assert first["available"] and not first["cached"], first
    labeled_vs_pool = next(t for t in first["tests"] if t["name"] == "labeled vs pool")
    assert 0.0 <= labeled_vs_pool["auc"] <= 1.0 and 0.0 < labeled_vs_pool["p_value"] <= 1.0
    assert labeled_vs_pool["verdict"] in ("no detectable shift", "detectable shift", "strong shift")
    assert default_storage.exists(
        f"insights/{inspection_project.slug}/drift-scoring-{first['scoring_run']}-f1.json"
    )
    again = selectors.drift(project=inspection_project)
    assert again["cached"] and again["tests"] == first["tests"]

    curve = selectors.learning_curve(project=inspection_project)["versions"]
    version = ModelVersion.objects.get(project=inspection_project)
    assert curve[0]["balanced_accuracy"] == version.metrics["balanced_accuracy"]
    assert curve[0]["labels_used"] == version.labels_used > 0
