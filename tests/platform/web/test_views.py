import pytest
from django.test import Client

from loupe.accounts.models import Role
from loupe.datasets.models import ItemState
from loupe.labeling.models import GroundTruth
from loupe.learning.models import LearningLoop, RunStatus
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.platform.insights.builders import build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_client():
    project = ProjectFactory(name="Castings", slug="castings")
    user = UserFactory(role=Role.MANAGER)
    MembershipFactory(project=project, user=user, role=Role.MANAGER)
    client = Client()
    client.force_login(user)
    return client, project


def client_as(project, role):
    user = UserFactory(role=role)
    MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_a_login():
    response = Client().get("/")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_the_gallery_shows_items_and_their_state(member_client):
    client, project = member_client
    ItemFactory.create_batch(3, project=project)
    ItemFactory(project=project, state=ItemState.QUEUED)

    page = client.get("/projects/castings/items/").content.decode()

    assert page.count('class="tile"') == 4
    assert "<b>3</b> unlabeled" in page and "<b>1</b> queued for labeling" in page
    filtered = client.get("/projects/castings/items/?state=queued").content.decode()
    assert filtered.count('class="tile"') == 1


def test_the_project_list_shows_only_my_projects(member_client):
    client, _ = member_client
    ProjectFactory(name="Secret welding line")

    page = client.get("/").content.decode()

    assert "Castings" in page and "Secret welding line" not in page
    assert client.get("/projects/" + "project-0/").status_code == 404


def test_an_empty_project_explains_itself(member_client):
    client, _ = member_client
    items = client.get("/projects/castings/items/").content.decode()
    assert "No items match these filters" in items
    overview = client.get("/projects/castings/").content.decode()
    assert "This project has no classes yet" in overview
    assert "No model trained yet" in overview and "Nothing to export yet" in overview
    models = client.get("/projects/castings/models/").content.decode()
    assert "No model version yet" in models and "No job has run" in models
    drift = client.get("/projects/castings/drift/").content.decode()
    assert "score the pool first" in drift


def test_the_overview_shows_the_numbers_of_the_database():
    world = build_world()
    page = client_as(world.project, Role.MANAGER).get(f"/projects/{world.project.slug}/")
    html = page.content.decode()

    labels = GroundTruth.objects.filter(item__project=world.project, needs_review=False).count()
    assert f'<b id="total-labels">{labels}</b>' in html
    assert "About 8 more labels to find 2 more scratch" in html
    assert "1 item waits for a reviewer" in html
    assert "Imbalance <b>2.3 : 1</b> (good vs scratch)" in html
    assert "Each training image is used as it is; never rescaled." in html
    assert 'id="throughput-data"' in html and 'id="curve-data"' in html
    # A manager neither labels nor starts jobs: neither control is on the page.
    assert "Label now" not in html and "start-loop" not in html


def test_label_now_for_experts_and_an_explanation_when_unlinked(settings):
    world = build_world()
    expert = client_as(world.project, Role.EXPERT)
    slug = world.project.slug

    unlinked = expert.get(f"/projects/{slug}/").content.decode()
    assert 'id="label-now"' not in unlinked and "linked to Label Studio" in unlinked

    settings.LABEL_STUDIO_URL = "http://ls.example:8080"
    world.project.ls_project_id = 17
    world.project.save()
    linked = expert.get(f"/projects/{slug}/").content.decode()
    assert 'href="http://ls.example:8080/projects/17/data?labeling=1"' in linked
    assert 'id="ls-login"' not in linked  # no Label Studio account made for them yet


def test_a_labeler_sees_their_own_label_studio_login_and_nobody_else_does(settings):
    from django.contrib.auth import get_user_model

    from loupe.labeling.models import LabelStudioUser

    world = build_world()
    world.project.ls_project_id = 17
    world.project.save()
    expert = client_as(world.project, Role.EXPERT)
    manager = client_as(world.project, Role.MANAGER)
    user = get_user_model().objects.get(pk=expert.session["_auth_user_id"])
    LabelStudioUser.objects.create(
        user=user, ls_user_id=41, email="ann@users.loupe.local", password="tulip-41-river"
    )
    page = expert.get(f"/projects/{world.project.slug}/").content.decode()
    assert "ann@users.loupe.local" in page and "tulip-41-river" in page
    other = manager.get(f"/projects/{world.project.slug}/").content.decode()
    assert "tulip-41-river" not in other and 'id="ls-login"' not in other


def test_the_gallery_filters_by_uncertainty_and_shows_prediction_and_reason():
    world = build_world()
    client = client_as(world.project, Role.EXPERT)
    slug = world.project.slug

    # v2 scored the 8 pool items with uncertainty 0.60 .. 0.67.
    page = client.get(f"/projects/{slug}/items/?uncertainty=0.5&order=uncertain").content.decode()
    assert page.count('class="tile"') == 8
    assert "model: good 70%" in page and "model: scratch" in page
    assert (
        client.get(f"/projects/{slug}/items/?uncertainty=0.8")
        .content.decode()
        .count('class="tile"')
        == 0
    )
    queued = client.get(f"/projects/{slug}/items/?state=queued").content.decode()
    assert "random control slice" in queued and "margin score" in queued


def test_most_uncertain_first_puts_the_scored_items_first_and_the_unscored_last():
    import re

    from loupe.datasets.models import Item
    from loupe.learning.models import Prediction

    world = build_world()
    client = client_as(world.project, Role.EXPERT)
    page = client.get(f"/projects/{world.project.slug}/items/?order=uncertain").content.decode()
    shown = [int(i) for i in re.findall(r'class="tile"[^>]*data-item="(\d+)"', page)]
    scored = dict(
        Prediction.objects.filter(model_version=world.v2).values_list("item_id", "uncertainty")
    )
    unscored = set(Item.objects.filter(project=world.project).values_list("id", flat=True))
    unscored -= set(scored)
    assert scored and unscored  # the world has both
    # Scored items by falling uncertainty, then those without a score (on every database).
    first = shown[: len(scored)]
    assert set(first) == set(scored)
    assert [scored[i] for i in first] == sorted(scored.values(), reverse=True)
    assert set(shown[len(scored) :]) <= unscored


def test_the_models_page_shows_versions_and_a_confusion_matrix():
    world = build_world()
    world.v2.metrics = {
        **world.v2.metrics,
        "confusion_matrix": [[5, 1, 0], [1, 2, 0], [0, 0, 0]],
        "per_class": [
            {"class": n, "recall": r, "precision": 0.5, "f1": 0.5, "support": s}
            for n, r, s in (("good", 5 / 6, 6), ("scratch", 2 / 3, 3), ("dent", 0.0, 0))
        ],
    }
    world.v2.save()
    html = (
        client_as(world.project, Role.ENGINEER)
        .get(f"/projects/{world.project.slug}/models/")
        .content.decode()
    )

    assert 'id="versions"' in html and "v2" in html and "v1" in html
    assert 'id="confusion"' in html and ">5</td>" in html
    assert "0.67" in html  # v1's balanced accuracy on the control slice: (1/2 + 1) / 2
    assert 'id="start-loop"' in html


def test_only_engineers_start_and_cancel_jobs():
    world = build_world()
    slug = world.project.slug

    denied = client_as(world.project, Role.MANAGER).post(f"/projects/{slug}/jobs/start/")
    assert denied.status_code == 403 and not LearningLoop.objects.exists()

    engineer = client_as(world.project, Role.ENGINEER)
    # v2 has seen every label: the page asks before retraining for nothing.
    asked = engineer.post(f"/projects/{slug}/jobs/start/").content.decode()
    assert "No new labels since model v2" in asked and 'id="force-loop"' in asked
    assert not LearningLoop.objects.exists()
    started = engineer.post(f"/projects/{slug}/jobs/start/", {"force": "1"}).content.decode()
    loop = LearningLoop.objects.get()
    assert loop.status == RunStatus.RUNNING
    assert 'hx-trigger="every 1s"' in started and f'data-loop="{loop.pk}"' in started

    cancelled = engineer.post(f"/loops/{loop.pk}/cancel/").content.decode()
    loop.refresh_from_db()
    assert loop.status == RunStatus.CANCELLED
    assert "every 1s" not in cancelled and 'id="start-loop"' in cancelled


def test_the_overview_follows_a_running_loop_instead_of_saying_no_model():
    from tests.platform.insights.builders import running_loop

    project = ProjectFactory(slug="castings-live")
    client = client_as(project, Role.MANAGER)
    running_loop(project, progress=0.5, elapsed=120)

    html = client.get("/projects/castings-live/").content.decode()

    assert "No model trained yet" not in html
    assert "The first model is on its way (see the learning loop above)" in html
    assert 'id="loop-percent">40%' in html and "about 3 min left" in html
    assert 'hx-get="/projects/castings-live/loop/" hx-trigger="every 2s"' in html
    models = client_as(project, Role.ENGINEER).get("/projects/castings-live/models/")
    assert "about 3 min left" in models.content.decode()
    assert ">40%</span>" in models.content.decode()


def test_the_loop_card_says_when_the_loop_ended_under_the_pages_eyes():
    from tests.platform.insights.builders import running_loop

    project = ProjectFactory(slug="castings-end")
    client = client_as(project, Role.MANAGER)
    loop = running_loop(project)
    LearningLoop.objects.filter(pk=loop.pk).update(
        status=RunStatus.SUCCEEDED, step=LearningLoop.Step.DONE, finished_at=loop.heartbeat_at
    )

    card = client.get("/projects/castings-end/loop/", HTTP_HX_REQUEST="true").content.decode()

    assert "every 2s" not in card and "The loop has just ended" in card
    assert f"Loop #{loop.pk} ended" in card
    overview = client.get("/projects/castings-end/").content.decode()
    assert "The loop has just ended" not in overview and f"Loop #{loop.pk} ended" in overview


def test_the_pace_is_per_day_over_the_days_that_passed_and_per_hour_before():
    from datetime import timedelta

    from django.utils import timezone

    from loupe.labeling.models import Decision

    world = build_world()
    client = client_as(world.project, Role.MANAGER)
    html = client.get(f"/projects/{world.project.slug}/").content.decode()
    assert '<b id="label-rate">1.5</b><span>labels a day (3 in the last 2.0 days)' in html
    assert "It runs from the first new label of the last 14 days to now, at least an hour" in html

    GroundTruth.objects.filter(project=world.project, decided_by=Decision.SINGLE).exclude(
        created_at__lt=timezone.now() - timedelta(days=5)
    ).update(created_at=timezone.now() - timedelta(hours=3))
    html = client.get(f"/projects/{world.project.slug}/").content.decode()
    assert '<b id="label-rate">1.0</b><span>labels an hour (3 in the last 3.0 hours)' in html
    assert "labels a day" not in html
    assert "about 8.0 hours of labeling at 1.0 labels an hour" in html


def test_a_target_beyond_the_pool_is_said_on_the_overview():
    world = build_world()
    world.scratch.target_count = 200
    world.scratch.save()

    html = client_as(world.project, Role.MANAGER).get(f"/projects/{world.project.slug}/")

    assert (
        "The current pool cannot meet the scratch target: 197 more needed" in html.content.decode()
    )


def test_the_source_filter_lists_each_source_once(member_client):
    client, project = member_client
    ItemFactory.create_batch(3, project=project, source="line-a")
    ItemFactory.create_batch(2, project=project, source="line-b")

    html = client.get("/projects/castings/items/").content.decode()

    assert html.count('<option value="line-a"') == 1 and html.count('<option value="line-b"') == 1


def _zip(files: dict[str, bytes], name="batch.zip"):
    import io
    import zipfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in files.items():
            archive.writestr(path, content)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def test_an_engineer_uploads_a_zip_and_the_page_shows_its_counts_and_rejections(
    import_root, django_capture_on_commit_callbacks
):
    from loupe.projects.services import project_create
    from tests.images import png_bytes

    project = project_create(name="Welds", created_by=None, classes=["ok", "crack"])
    engineer = client_as(project, Role.ENGINEER)
    page = engineer.get(f"/projects/{project.slug}/imports/").content.decode()
    assert 'id="upload-form"' in page and 'type="file"' in page

    upload = _zip({"ok/1.png": png_bytes(1), "crack/2.png": png_bytes(2), "crack/bad.png": b"x"})
    with django_capture_on_commit_callbacks(execute=True):
        response = engineer.post(
            f"/projects/{project.slug}/imports/upload/", {"file": upload, "source_tag": "line-c"}
        )
    assert response.status_code == 302

    html = engineer.get(response.url).content.decode()
    assert "line-c" in html and 'href="/api/v1/imports/' not in html
    assert 'data-field="imported">2<' in html and 'data-field="labeled">2<' in html
    assert 'data-field="rejected">1<' in html and "1 file not imported" in html
    assert "<code>crack/bad.png</code>:" in html
    assert "every 2s" not in html  # nothing runs any more


def test_a_running_import_is_followed_and_a_bad_upload_is_explained(import_root):
    from loupe.datasets.models import ImportJob, JobStatus

    project = ProjectFactory(slug="welds-live")
    engineer = client_as(project, Role.ENGINEER)
    ImportJob.objects.create(
        project=project, kind="zip", source_path="/x.zip", source_tag="x",
        status=JobStatus.RUNNING, total=200, processed=50, imported=48, rejected=2,
    )  # fmt: skip

    fragment = engineer.get("/projects/welds-live/imports/jobs/").content.decode()
    assert 'hx-trigger="every 2s"' in fragment and "50 of 200 files" in fragment
    assert ">25%</span>" in fragment

    refused = engineer.post(
        "/projects/welds-live/imports/upload/", {"file": _zip({}, name="images.tar")}
    )
    assert refused.status_code == 400 and "Upload a .zip archive" in refused.content.decode()
    manager = client_as(project, Role.MANAGER)
    assert 'id="upload-form"' not in manager.get("/projects/welds-live/imports/").content.decode()
    denied = manager.post("/projects/welds-live/imports/upload/", {"file": _zip({})})
    assert denied.status_code == 403 and ImportJob.objects.count() == 1


def test_between_loops_the_overview_says_what_the_next_one_waits_for():
    from loupe.insights.loops import loop_status
    from tests.platform.insights.builders import running_loop

    world = build_world()
    client = client_as(world.project, Role.MANAGER)
    waiting = loop_status(project=world.project)["message"]

    html = client.get(f"/projects/{world.project.slug}/").content.decode()
    assert f'id="loop-status">{waiting[0].upper()}{waiting[1:]}.</p>' in html

    running_loop(world.project)
    html = client.get(f"/projects/{world.project.slug}/").content.decode()
    assert 'id="loop-status"' not in html and 'id="loop-step"' in html


def test_pages_declare_their_icon_so_browsers_do_not_ask_for_a_missing_favicon():
    response = Client().get("/login/")
    assert response.status_code == 200
    assert b'<link rel="icon"' in response.content


def test_a_detection_overview_says_what_training_does_to_each_crop():
    from loupe.projects.services import project_create

    project = project_create(
        name="Scores", created_by=None, task_type="object_detection", augmentations={"blur": 0}
    )
    html = client_as(project, Role.MANAGER).get(f"/projects/{project.slug}/").content.decode()
    assert "Each training crop of a page is zoomed by up to ± 8%" in html
    assert "strokes thickened or thinned with probability 0.5" in html
    assert "blurred" not in html  # the project turned blur off
    assert "never rescaled" not in html  # the classification wording is not reused
