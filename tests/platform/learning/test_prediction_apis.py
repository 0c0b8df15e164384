"""Per-item predictions in the REST API: the list of one model version (filters, orderings,
cursor pages, which version), its CSV and JSON-lines exports, and who may read them."""

import csv
import io
import json

import pytest
from django.utils import timezone

from loupe.accounts.models import Role
from loupe.datasets.models import Item, ItemState, Split
from loupe.learning.loop import loop_start
from loupe.learning.models import ModelVersion, Prediction, RunStatus, TrainingRun
from loupe.learning.scoring import scoring_arrays
from tests.factories import (
    ItemFactory,
    LabelClassFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

CLASSES = ["good", "scratch", "dent"]


def as_member(api_client, project, role=Role.EXPERT):
    user = UserFactory(role=role)
    MembershipFactory(project=project, user=user, role=role)
    api_client.force_authenticate(user)
    return api_client


def version_of(project, number: int, class_names=CLASSES) -> ModelVersion:
    run = TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED)
    return ModelVersion.objects.create(
        project=project,
        training_run=run,
        version=number,
        weights=f"models/v{number}.pt",
        image_size=32,
        class_names=list(class_names),
    )


def predict(version: ModelVersion, item: Item, probs: list[float]) -> Prediction:
    """A prediction as scoring writes it: class, confidence and margin from the probs."""
    ranked = sorted(probs, reverse=True)
    top = probs.index(ranked[0])
    label = version.project.classes.get(name=version.class_names[top])
    return Prediction.objects.create(
        item=item,
        model_version=version,
        predicted_class=label,
        confidence=ranked[0],
        uncertainty=1.0 - (ranked[0] - ranked[1]),
        probs=probs,
    )


@pytest.fixture
def project():
    project = ProjectFactory()
    for order, name in enumerate(CLASSES):
        LabelClassFactory(project=project, name=name, order=order)
    return project


@pytest.fixture
def scored(project):
    """Version 1 and 2 scored six items; version 3 is trained and has not scored yet."""
    items = [ItemFactory(project=project) for _ in range(6)]
    Item.objects.filter(pk=items[0].pk).update(state=ItemState.LABELED, split=Split.TRAIN)
    Item.objects.filter(pk=items[1].pk).update(state=ItemState.QUEUED)
    old, latest = version_of(project, 1), version_of(project, 2)
    version_of(project, 3)
    for item in items:
        predict(old, item, [0.9, 0.05, 0.05])
    probs = [
        [0.70, 0.20, 0.10],  # good, uncertainty 0.5
        [0.10, 0.85, 0.05],  # scratch, 0.25
        [0.45, 0.40, 0.15],  # good, 0.95
        [0.20, 0.20, 0.60],  # dent, 0.6
        [0.05, 0.05, 0.90],  # dent, 0.15
        [0.30, 0.35, 0.35],  # scratch (first of the tie), 1.0
    ]
    for item, p in zip(items, probs, strict=True):
        predict(latest, item, p)
    return {"items": items, "old": old, "latest": latest}


def url(project, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/projects/{project.slug}/predictions/" + (f"?{query}" if query else "")


def test_a_row_says_what_the_model_thinks_of_the_item(api_client, project, scored):
    client = as_member(api_client, project)

    rows = client.get(url(project, ordering="id")).json()["results"]

    item = scored["items"][0]
    assert rows[0] == {
        "item_id": item.pk,
        "file_url": f"/api/v1/items/{item.pk}/file/",
        "state": "labeled",
        "split": "train",
        "predicted_class": "good",
        "confidence": 0.7,
        "uncertainty": pytest.approx(0.5),
        "probabilities": {"good": 0.7, "scratch": 0.2, "dent": 0.1},
        "version": 2,
        "scored_at": rows[0]["scored_at"],
    }
    assert rows[0]["scored_at"].startswith(str(timezone.now().year))


def test_the_latest_version_that_has_predictions_is_the_default(api_client, project, scored):
    client = as_member(api_client, project)

    default = client.get(url(project)).json()["results"]
    first = client.get(url(project, version=1)).json()["results"]
    unscored = client.get(url(project, version=3)).json()

    assert {r["version"] for r in default} == {2} and len(default) == 6
    assert {r["version"] for r in first} == {1} and len(first) == 6
    assert {r["predicted_class"] for r in first} == {"good"}
    assert unscored["results"] == [] and unscored["next"] is None


def test_a_project_without_predictions_answers_an_empty_page(api_client, project):
    version_of(project, 1)
    client = as_member(api_client, project)

    response = client.get(url(project))

    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": []}


def test_a_version_the_project_does_not_have_is_refused(api_client, project, scored):
    client = as_member(api_client, project)

    response = client.get(url(project, version=9))

    assert response.status_code == 400
    error = response.json()["error"]
    assert "9" in error["message"] and error["details"]["versions"] == [1, 2, 3]


def test_filters_by_item_state_split_and_predicted_class(api_client, project, scored):
    client = as_member(api_client, project)
    items = scored["items"]

    def ids(**params):
        return [
            r["item_id"]
            for r in client.get(url(project, ordering="id", **params)).json()["results"]
        ]

    assert ids(state="queued") == [items[1].pk]
    assert ids(split="train") == [items[0].pk]
    assert ids(split="pool", state="unlabeled") == [i.pk for i in items[2:]]
    assert ids(label="dent") == [items[3].pk, items[4].pk]
    assert ids(label="scratch", state="unlabeled") == [items[5].pk]
    assert ids(label="good", version=1) == [i.pk for i in items]


@pytest.mark.parametrize(
    ("ordering", "key", "reverse"),
    [
        ("-uncertainty", "uncertainty", True),
        ("uncertainty", "uncertainty", False),
        ("-confidence", "confidence", True),
        ("confidence", "confidence", False),
        ("id", "item_id", False),
    ],
)
def test_orderings(api_client, project, scored, ordering, key, reverse):
    client = as_member(api_client, project)

    rows = client.get(url(project, ordering=ordering)).json()["results"]

    values = [r[key] for r in rows]
    assert len(values) == 6 and values == sorted(values, reverse=reverse)
    assert len(set(values)) > 1


def test_the_most_uncertain_come_first_by_default(api_client, project, scored):
    client = as_member(api_client, project)

    rows = client.get(url(project)).json()["results"]

    assert [r["item_id"] for r in rows[:2]] == [scored["items"][5].pk, scored["items"][2].pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"ordering": "-created_at"}, "ordering"),
        ({"ordering": "margin"}, "ordering"),
        ({"state": "lost"}, "state"),
        ({"split": "test"}, "split"),
        ({"version": "latest"}, "version"),
        ({"page_size": "0"}, "page_size"),
        ({"lable": "dent"}, "lable"),
    ],
)
def test_a_bad_ordering_or_filter_is_a_400_naming_it(api_client, project, scored, params, field):
    client = as_member(api_client, project)

    response = client.get(url(project, **params))

    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid" and field in body["error"]["details"]


def test_a_class_the_project_does_not_have_is_refused(api_client, project, scored):
    client = as_member(api_client, project)

    response = client.get(url(project, label="crack"))

    assert response.status_code == 400
    assert response.json()["error"]["details"]["classes"] == CLASSES


def test_a_forged_cursor_is_a_400(api_client, project, scored):
    client = as_member(api_client, project)

    response = client.get(url(project, cursor="not-a-cursor"))

    assert response.status_code == 400 and "cursor" in response.json()["error"]["message"]


def walk(client, first_url, link="next"):
    """Every page from `first_url` on, following `link`."""
    pages, next_url = [], first_url
    while next_url:
        body = client.get(next_url).json()
        pages.append([r["item_id"] for r in body["results"]])
        next_url = body[link]
    return pages


def test_pages_go_forward_and_back_over_ties_without_losing_or_repeating_a_row(
    api_client, project, scored
):
    client = as_member(api_client, project)
    items = scored["items"]
    # Version 1 gave every item the same confidence: only the id tells them apart.
    expected = [i.pk for i in items]

    pages = walk(client, url(project, version=1, ordering="-confidence", page_size=4))
    last = client.get(url(project, version=1, ordering="-confidence", page_size=4)).json()
    last = client.get(last["next"]).json()
    back = walk(client, last["previous"], link="previous")

    assert pages == [expected[:4], expected[4:]]
    assert back == [expected[:4]]


def test_more_ties_than_one_page_offset_can_hold_are_paged_in_full(api_client, project):
    version = version_of(project, 1)
    good = project.classes.get(name="good")
    items = Item.objects.bulk_create(ItemFactory.build(project=project) for _ in range(1100))
    Prediction.objects.bulk_create(
        Prediction(
            item=item,
            model_version=version,
            predicted_class=good,
            confidence=1.0,
            uncertainty=0.0,
            probs=[1.0, 0.0, 0.0],
        )
        for item in items
    )
    client = as_member(api_client, project)

    pages = walk(client, url(project, ordering="confidence", page_size=500))

    assert [len(page) for page in pages] == [500, 500, 100]
    assert sorted(pk for page in pages for pk in page) == sorted(i.pk for i in items)


def test_a_cursor_of_another_ordering_is_refused(api_client, project, scored):
    client = as_member(api_client, project)
    next_url = client.get(url(project, ordering="-confidence", page_size=2)).json()["next"]

    response = client.get(next_url.replace("ordering=-confidence", "ordering=uncertainty"))

    assert response.status_code == 400


@pytest.mark.parametrize("role", list(Role))
def test_every_member_may_read_predictions(api_client, project, scored, role):
    client = as_member(api_client, project, role)
    version_id = scored["latest"].pk

    assert client.get(url(project)).status_code == 200
    assert client.get(f"/api/v1/model-versions/{version_id}/predictions.csv").status_code == 200
    assert client.get(f"/api/v1/model-versions/{version_id}/predictions.jsonl").status_code == 200


def test_a_non_member_finds_no_predictions(api_client, project, scored):
    as_member(api_client, ProjectFactory())  # a member of another project only
    version_id = scored["latest"].pk

    responses = [
        api_client.get(url(project)),
        api_client.get(f"/api/v1/model-versions/{version_id}/predictions.csv"),
        api_client.get(f"/api/v1/model-versions/{version_id}/predictions.jsonl"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert all(r.json()["error"]["code"] == "not_found" for r in responses)


def streamed(response) -> str:
    assert response.status_code == 200 and response.streaming
    return b"".join(response.streaming_content).decode()


def test_the_jsonl_export_holds_the_rows_of_the_list(api_client, project, scored):
    client = as_member(api_client, project)
    version = scored["latest"]

    response = client.get(f"/api/v1/model-versions/{version.pk}/predictions.jsonl")
    lines = [json.loads(line) for line in streamed(response).splitlines()]
    listed = client.get(url(project, ordering="id")).json()["results"]

    assert response["Content-Type"] == "application/x-ndjson"
    assert f"{project.slug}-v2-predictions.jsonl" in response["Content-Disposition"]
    assert lines == listed


def test_the_csv_export_has_a_column_per_class_and_defuses_formulas(api_client, project):
    LabelClassFactory(project=project, name="=HYPERLINK(1)", order=9)
    names = [*CLASSES, "=HYPERLINK(1)"]
    version = version_of(project, 1, class_names=names)
    items = [ItemFactory(project=project) for _ in range(3)]
    predict(version, items[0], [0.1, 0.1, 0.1, 0.7])
    predict(version, items[1], [0.6, 0.2, 0.1, 0.1])
    predict(version, items[2], [0.2, 0.5, 0.2, 0.1])
    client = as_member(api_client, project)

    response = client.get(
        f"/api/v1/model-versions/{version.pk}/predictions.csv", HTTP_ACCEPT="text/csv"
    )
    rows = list(csv.DictReader(io.StringIO(streamed(response))))

    assert response["Content-Type"] == "text/csv"
    assert list(rows[0]) == [
        "item_id",
        "file_url",
        "state",
        "split",
        "predicted_class",
        "confidence",
        "uncertainty",
        "version",
        "scored_at",
        "p_good",
        "p_scratch",
        "p_dent",
        "p_=HYPERLINK(1)",
    ]
    assert [r["item_id"] for r in rows] == [str(i.pk) for i in items]
    assert [r["predicted_class"] for r in rows] == ["'=HYPERLINK(1)", "good", "scratch"]
    assert rows[1]["p_good"] == "0.6" and rows[0]["p_=HYPERLINK(1)"] == "0.7"
    assert rows[2]["state"] == "unlabeled" and rows[2]["version"] == "1"
    assert float(rows[2]["uncertainty"]) == pytest.approx(0.7)


def test_the_rows_are_what_scoring_wrote(
    api_client, inspection_project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        loop, _ = loop_start(project=inspection_project)
    loop.refresh_from_db()
    assert loop.status == RunStatus.SUCCEEDED, loop.error
    arrays = scoring_arrays(run=loop.scoring_run)
    by_item = dict(zip(arrays.item_ids.tolist(), arrays.probs.tolist(), strict=True))
    names = ModelVersion.objects.get(project=inspection_project).class_names
    client = as_member(api_client, inspection_project)

    pages = []
    next_url = url(inspection_project, page_size=40)
    while next_url:
        body = client.get(next_url).json()
        pages.extend(body["results"])
        next_url = body["next"]

    assert sorted(r["item_id"] for r in pages) == sorted(by_item)
    uncertainties = [r["uncertainty"] for r in pages]
    assert uncertainties == sorted(uncertainties, reverse=True)
    for row in pages:
        probs = by_item[row["item_id"]]
        assert list(row["probabilities"]) == names
        assert list(row["probabilities"].values()) == pytest.approx(probs, abs=1e-5)
        assert row["predicted_class"] == names[probs.index(max(probs))]
        assert row["confidence"] == pytest.approx(max(probs), abs=1e-6)
