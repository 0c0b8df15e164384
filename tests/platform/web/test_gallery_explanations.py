"""The gallery shows, for a picked item, where the model looked and the labeled items it
resembles; the overlay is served to the project's people only."""

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from loupe.accounts.models import Role
from tests.factories import MembershipFactory, UserFactory
from tests.images import png_bytes
from tests.platform.labeling.builders import (
    items_with_files,
    labeling_project,
    model_version,
    selection_round,
)

pytestmark = pytest.mark.django_db


def client_as(project, role):
    user = UserFactory(role=role)
    MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def explained():
    """A round of two picks; the first explained (overlay and two neighbours), the second
    not (its explanation failed)."""
    project = labeling_project(classes=("good", "scratch"))
    labeled = items_with_files(project, 2, seed=10)
    picked = items_with_files(project, 2)
    selection = selection_round(project, picked, version=model_version(project))
    first = selection.items.get(rank=1)
    first.saliency = default_storage.save(
        f"explain/{project.slug}/v1/item-{first.item_id}.png", ContentFile(png_bytes(3))
    )
    first.neighbours = [
        {"item_id": labeled[0].pk, "label": "scratch", "distance": 0.1},
        {"item_id": labeled[1].pk, "label": "good", "distance": 0.2},
    ]
    first.save()
    return project, first, selection.items.get(rank=2), labeled


def tile(page: str, item_id: int) -> str:
    match = re.search(rf'<figure class="tile" data-item="{item_id}">(.*?)</figure>', page, re.S)
    assert match, f"no tile for item {item_id}"
    return match.group(1)


def test_a_picked_item_shows_its_overlay_and_the_labeled_items_it_resembles(explained):
    project, first, second, labeled = explained
    client = client_as(project, Role.EXPERT)

    page = client.get(f"/projects/{project.slug}/items/").content.decode()

    shown = tile(page, first.item_id)
    assert f'src="/projects/{project.slug}/picks/{first.pk}/saliency.png"' in shown
    assert "where the model looked to say scratch" in shown
    assert "looks like" in shown
    assert f'src="/api/v1/items/{labeled[0].pk}/file/"' in shown
    assert re.search(r'class="name">scratch</span>.*class="name">good</span>', shown, re.S)
    plain = tile(page, second.item_id)
    assert "saliency" not in plain and "looks like" not in plain
    assert 'id="show-saliency"' in page  # one switch shows every overlay at once


def test_the_overlay_is_served_to_the_projects_people_only(explained):
    project, first, second, _ = explained
    url = f"/projects/{project.slug}/picks/{first.pk}/saliency.png"

    answer = client_as(project, Role.EXPERT).get(url)
    assert answer.status_code == 200 and answer["Content-Type"] == "image/png"
    assert b"".join(answer.streaming_content) == png_bytes(3)

    outsider = client_as(labeling_project(classes=("a", "b")), Role.EXPERT)
    assert outsider.get(url).status_code == 404
    missing = f"/projects/{project.slug}/picks/{second.pk}/saliency.png"
    assert client_as(project, Role.EXPERT).get(missing).status_code == 404


def test_without_any_overlay_there_is_no_switch(explained):
    project, first, *_ = explained
    first.saliency = ""
    first.save()

    page = client_as(project, Role.EXPERT).get(f"/projects/{project.slug}/items/").content.decode()

    assert 'id="show-saliency"' not in page
    assert "looks like" in tile(page, first.item_id)
