"""The unbiased pool accuracy from the random control slice, beside the holdout figures."""

import pytest

from loupe.accounts.models import Role
from loupe.labeling.models import Decision, GroundTruth
from loupe.learning.models import Prediction, SelectionItem
from tests.factories import MembershipFactory, UserFactory
from tests.platform.labeling.builders import (
    items_with_files,
    labeling_project,
    model_version,
    selection_round,
)

pytestmark = pytest.mark.django_db


def test_the_pool_estimate_counts_only_labeled_control_picks(api_client):
    project = labeling_project(classes=("cat", "dog"))
    version = model_version(project)
    items = items_with_files(project, 8)
    chosen = selection_round(project, items, version=version)
    cat, dog = project.classes.get(name="cat"), project.classes.get(name="dog")
    picks = list(chosen.items.order_by("rank"))
    # Five controls: the model said cat on all; the experts say cat, cat, cat, dog, and the
    # fifth is not labeled yet. One pick outside the control slice is labeled too.
    SelectionItem.objects.filter(pk__in=[p.pk for p in picks]).update(is_control=False)
    SelectionItem.objects.filter(pk__in=[p.pk for p in picks[:5]]).update(is_control=True)
    for pick in picks:
        Prediction.objects.create(
            item=pick.item,
            model_version=version,
            predicted_class=cat,
            confidence=0.9,
            uncertainty=0.2,
            probs=[0.9, 0.1],
        )
    for pick, truth in zip(picks[:4] + picks[6:7], [cat, cat, cat, dog, dog], strict=True):
        GroundTruth.objects.create(
            item=pick.item, label_class=truth, decided_by=Decision.SINGLE, num_annotators=1
        )

    user = UserFactory(role=Role.MANAGER)
    MembershipFactory(project=project, user=user, role=Role.MANAGER)
    api_client.force_authenticate(user)
    body = api_client.get(f"/api/v1/model-versions/{version.pk}/").json()
    estimate = body["pool_estimate"]
    assert estimate["n"] == 4
    assert estimate["accuracy"] == pytest.approx(0.75)
    low, high = estimate["interval"]
    assert low < 0.75 < high and high - low > 0.4  # four items: the interval says how unsure
    assert "random control picks" in estimate["on"]
