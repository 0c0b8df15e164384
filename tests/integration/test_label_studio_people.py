"""Each Loupe user who labels has their own Label Studio user: Loupe creates it on sync (or
when a labeling member joins a linked project), the person signs in to Label Studio with the
password Loupe set, and their answers come back under their Loupe name."""

from __future__ import annotations

import httpx
import pytest

from loupe.accounts.models import Role
from loupe.accounts.services import membership_set, user_create
from loupe.labeling import adapter
from loupe.labeling.ls_payloads import choices_result
from loupe.labeling.models import Annotation, LabelStudioUser
from loupe.labeling.people import label_studio_login
from loupe.labeling.services import project_reconcile, project_sync, selection_round_push
from tests.integration.labelstudio_server import wait_until
from tests.platform.labeling.builders import (
    items_with_files,
    labeling_project,
    model_version,
    selection_round,
)

pytestmark = [pytest.mark.labelstudio, pytest.mark.django_db(transaction=True)]


def signed_in(url: str, email: str, password: str) -> httpx.Client:
    """A browser session of Label Studio, signed in through its login form."""
    browser = httpx.Client(base_url=url, follow_redirects=False, timeout=10)
    browser.get("/user/login/")
    answer = browser.post(
        "/user/login/",
        data={
            "email": email,
            "password": password,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": f"{url}/user/login/"},
    )
    assert answer.status_code == 302, f"{email} could not sign in to Label Studio"
    return browser


def submit(browser: httpx.Client, task_id: int, choice: str) -> int:
    """What the labeling view's Submit sends, from the signed-in session."""
    answer = browser.post(
        f"/api/tasks/{task_id}/annotations/",
        json={"result": choices_result([choice]), "lead_time": 1.5},
        headers={"X-CSRFToken": browser.cookies["csrftoken"]},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_labelers_get_their_own_label_studio_users_and_answers_name_them(server, client):
    project = labeling_project(overlap=2, retrain_every_n_labels=0)
    vera = user_create(username="vera", email="Vera@Plant.example", password="x-pw-1")
    otto = user_create(username="otto", password="x-pw-2", role=Role.ENGINEER)
    mia = user_create(username="mia", password="x-pw-3", role=Role.MANAGER)
    membership_set(project=project, user=vera, role=Role.EXPERT)
    membership_set(project=project, user=otto, role=Role.ENGINEER)
    membership_set(project=project, user=mia, role=Role.MANAGER)
    items = items_with_files(project, 3)
    selection = selection_round(project, items, version=model_version(project))

    selection_round_push(selection_round=selection)  # syncs the project first

    links = {link.user.username: link for link in LabelStudioUser.objects.select_related("user")}
    assert set(links) == {"vera", "otto"}  # a manager does not label
    assert links["vera"].email == "vera@plant.example"
    assert links["otto"].email == "otto@users.loupe.local"
    in_label_studio = adapter.users_list(client)
    assert in_label_studio[links["vera"].ls_user_id] == "vera@plant.example"
    assert in_label_studio[links["otto"].ls_user_id] == "otto@users.loupe.local"

    # Each signs in with the login Loupe shows them and labels the same task (overlap 2).
    task_of = dict(selection.items.values_list("item_id", "ls_task_id"))
    answers = {}
    for user, choice in ((vera, "cat"), (otto, "dog")):
        login = label_studio_login(user=user)
        assert login["url"] == server.url and login["password"]
        browser = signed_in(server.url, login["email"], login["password"])
        answers[user.username] = submit(browser, task_of[items[0].pk], choice)
    # The service account's answer stays under its own Label Studio email.
    client.annotations.create(id=task_of[items[1].pk], result=choices_result(["cat"]))

    assert wait_until(lambda: Annotation.objects.count() == 3)  # webhooks: ids only
    by_id = {a.ls_annotation_id: a for a in Annotation.objects.all()}
    assert (by_id[answers["vera"]].annotator, by_id[answers["vera"]].user) == ("vera", vera)
    assert (by_id[answers["otto"]].annotator, by_id[answers["otto"]].user) == ("otto", otto)
    assert set(Annotation.objects.filter(user=None).values_list("annotator", flat=True)) == {
        server.username
    }
    # Reconciliation's listings say the same.
    project_reconcile(project=project, full=True)
    assert set(Annotation.objects.values_list("annotator", flat=True)) == {
        "vera",
        "otto",
        server.username,
    }

    # Syncing again creates nobody new and keeps the passwords people were given.
    before = {(link.ls_user_id, link.password) for link in links.values()}
    project_sync(project=project)
    after = {(link.ls_user_id, link.password) for link in LabelStudioUser.objects.all()}
    assert after == before
    assert len(adapter.users_list(client)) == len(in_label_studio)


def test_a_labeler_who_joins_a_linked_project_gets_a_label_studio_user(server, client):
    project = labeling_project()
    project_sync(project=project)
    newcomer = user_create(username="newcomer", email="new@plant.example", password="x-pw")

    membership_set(project=project, user=newcomer, role=Role.EXPERT)  # syncs in a worker

    login = label_studio_login(user=newcomer)
    assert login is not None and login["email"] == "new@plant.example"
    signed_in(server.url, login["email"], login["password"])


def test_an_existing_label_studio_user_with_the_same_email_is_linked(server, client):
    project = labeling_project()
    admin_email = server.username  # the account Loupe's token belongs to
    boss = user_create(username="boss", email=admin_email, password="x-pw", role=Role.ADMIN)
    membership_set(project=project, user=boss, role=Role.ADMIN)

    project_sync(project=project)

    link = LabelStudioUser.objects.get(user=boss)
    assert link.ls_user_id == client.users.whoami().id
    assert label_studio_login(user=boss)["password"] is None  # theirs, not Loupe's
