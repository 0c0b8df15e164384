"""A trained version looks at the project's labels: a holdout label flipped on purpose is a
suspect out of sample, found by running the network on items it never scored."""

import numpy as np
import pytest

from loupe.labeling.models import GroundTruth
from loupe.learning.label_suspects import (
    _labeled_rows,
    _probabilities,
    label_suspects_read,
    label_suspects_scan,
)
from loupe.learning.models import Prediction, RunStatus
from loupe.learning.training import training_run_create, training_run_execute
from loupe.projects.models import LabelClass
from tests.platform.labeling.review_builders import inspection_line

pytestmark = pytest.mark.django_db


def test_a_flipped_holdout_label_is_a_suspect_of_the_trained_version(import_root):
    project = inspection_line(import_root)
    run = training_run_execute(training_run_id=training_run_create(project=project).pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    version = run.model_version
    # The holdout was never scored: the scan runs the network on it.
    rows = _labeled_rows(version)
    holdout = [i for i, r in enumerate(rows) if r[4]]
    assert holdout and not Prediction.objects.filter(model_version=version).exists()
    probs = _probabilities(version, rows)
    # The holdout item the version is surest of, labeled wrongly on purpose.
    surest = max(holdout, key=lambda i: probs[i, rows[i][3]])
    assert probs[surest, rows[surest][3]] > 0.5
    item_id, true = rows[surest][0], version.class_names[rows[surest][3]]
    wrong = next(name for name in version.class_names if name != true)
    GroundTruth.objects.filter(item_id=item_id).update(
        label_class=LabelClass.objects.get(project=project, name=wrong)
    )

    label_suspects_scan(model_version=version)

    scan = label_suspects_read(model_version=version)
    suspects = {s["item_id"]: s for s in scan["suspects"]}
    assert item_id in suspects
    flipped = suspects[item_id]
    assert (flipped["given"], flipped["predicted"], flipped["evidence"]) == (wrong, true, "holdout")
    assert flipped["confidence"] == pytest.approx(float(probs[surest].max()), abs=1e-3)
    assert scan["checked"]["holdout"] == len(holdout)
    assert scan["checked"]["training"] == version.labels_used
    assert np.isclose(probs.sum(axis=1), 1.0).all()
