"""The expert's view of a pushed pair in a real Label Studio: both images side by side at the
same size, "same / different / can't tell", the model's answer chosen and why Loupe picked
the pair."""

import pytest

from loupe.accounts.models import Role
from loupe.accounts.services import membership_set, user_create
from loupe.datasets.models import Item, Split
from loupe.datasets.services import import_job_create, import_job_run
from loupe.labeling.ls_payloads import label_stream_url
from loupe.labeling.people import label_studio_login
from loupe.labeling.services import selection_round_push
from loupe.projects.services import project_create
from ml.synthetic_faces import make_faces_imagefolder
from tests.integration.labelstudio_server import labelstudio_server  # noqa: F401
from tests.platform.labeling.builders import model_version, selection_round

pytestmark = [pytest.mark.browser, pytest.mark.labelstudio, pytest.mark.django_db]


@pytest.fixture
def server(labelstudio_server, settings):  # noqa: F811
    settings.LABEL_STUDIO_URL = labelstudio_server.url
    settings.LABEL_STUDIO_API_TOKEN = labelstudio_server.token
    settings.MEDIA_ROOT = str(labelstudio_server.media_root)
    return labelstudio_server


def test_an_expert_sees_both_images_of_a_pair_and_the_three_answers(
    server, page, screenshot, import_root
):
    folder = import_root / "faces"
    made = make_faces_imagefolder(folder, identities=6, images_per_identity=3, seed=1)
    for name in made["identities"][3:]:  # three people's photos loose: pool pairs
        for path in sorted((folder / name).iterdir()):
            path.rename(folder / f"{name}-{path.name}")
        (folder / name).rmdir()
    project = project_create(
        name="Gate faces", created_by=None, task_type="pair_verification", image_size=48
    )
    import_job_run(
        import_job_id=import_job_create(project=project, path=str(folder), enqueue=False).pk
    )
    vera = user_create(username="vera", password="pw")
    membership_set(project=project, user=vera, role=Role.EXPERT)
    pairs = list(Item.objects.filter(project=project, split=Split.POOL).order_by("id")[:2])
    selection = selection_round(project, pairs, version=model_version(project))
    selection_round_push(selection_round=selection)
    project.refresh_from_db()
    login = label_studio_login(user=vera)

    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{server.url}/user/login/")
    page.fill("input[name=email]", login["email"])
    page.fill("input[name=password]", login["password"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url)
    page.goto(label_stream_url(server.url, project.ls_project_id))
    page.get_by_text("Why Loupe picked this pair").wait_for(timeout=30_000)
    page.wait_for_function(
        "Array.from(document.querySelectorAll(\"img[src^='blob:']\"))"
        ".filter(i => i.naturalWidth > 0).length >= 2",
        timeout=30_000,
    )
    page.wait_for_timeout(1000)  # a pop-up would open as the stream starts
    screenshot("labeling-view-pair")

    images = page.locator("img[src^='blob:']")
    left, right = images.nth(0).bounding_box(), images.nth(1).bounding_box()
    assert abs(left["width"] - right["width"]) < 2 and abs(left["y"] - right["y"]) < 2
    assert right["x"] >= left["x"] + left["width"]  # side by side
    height = page.viewport_size["height"]
    for answer in ("same", "different", "can't tell"):
        box = page.get_by_text(answer, exact=False).first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= height, f"{answer} below the fold"
    assert page.get_by_text("Do these two images show the same person?").is_visible()
    # The first pick's model answer (see the builders: class index 1 % 2, "same") is chosen.
    assert page.get_by_role("checkbox", name="same").is_checked()
    assert page.get_by_text("margin score 1.000").is_visible()
