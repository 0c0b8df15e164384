"""Loupe's labelers as Label Studio users: their login email, linking, and answers named
after the Loupe user whose Label Studio user gave them."""

import pytest

from loupe.accounts.models import Role
from loupe.accounts.services import membership_set, user_create
from loupe.labeling import people
from loupe.labeling.adapter import LabelStudioAccount, LabelStudioError
from loupe.labeling.events import events_apply
from loupe.labeling.models import Annotation, LabelStudioUser
from loupe.learning.models import SelectionRound
from tests.platform.labeling.builders import (
    annotation_body,
    items_with_files,
    labeling_project,
    selection_round,
    webhook,
)

pytestmark = pytest.mark.django_db


class FakeAccounts:
    """Label Studio's users as the adapter would see them; new users get ids from 10."""

    def __init__(self, monkeypatch, existing=None):
        self.users = dict(existing or {})
        self.created = []
        monkeypatch.setattr(people.adapter, "users_list", lambda client: dict(self.users))
        monkeypatch.setattr(people.adapter, "user_ensure", self.user_ensure)

    def user_ensure(self, client, *, base_url, email, known, timeout):
        for ls_id, known_email in self.users.items():
            if known_email == email:
                return LabelStudioAccount(id=ls_id, email=email)
        if email.startswith("refused"):
            raise LabelStudioError("sign-up refused")
        ls_id = 10 + len(self.created)
        self.users[ls_id] = email
        self.created.append(email)
        return LabelStudioAccount(id=ls_id, email=email, password=f"pw-{ls_id}")


@pytest.mark.parametrize(
    ("username", "email", "login"),
    [
        ("vera", "Vera@Plant.example ", "vera@plant.example"),
        ("otto@plant.example", "", "otto@plant.example"),
        ("Otto K", "", "otto-k@users.loupe.local"),
    ],
)
def test_the_label_studio_login_email(username, email, login):
    user = user_create(username=username, email=email, password="pw")
    assert people.label_studio_email(user=user) == login


def test_only_members_who_may_label_get_label_studio_users(monkeypatch):
    fake = FakeAccounts(monkeypatch, existing={1: "admin@loupe.local"})
    project = labeling_project()
    for name, role in [("a", Role.ADMIN), ("e", Role.ENGINEER), ("x", Role.EXPERT)]:
        membership_set(project=project, user=user_create(username=name, role=role), role=role)
    membership_set(project=project, user=user_create(username="m"), role=Role.MANAGER)

    links = people.project_label_studio_users_ensure(project=project, client=None)

    assert sorted(link.user.username for link in links) == ["a", "e", "x"]
    assert fake.created == [f"{n}@users.loupe.local" for n in ("a", "e", "x")]
    assert people.project_label_studio_users_ensure(project=project, client=None)
    assert len(fake.created) == 3  # nobody twice


def test_a_refusal_for_one_person_leaves_the_others_linked(monkeypatch):
    FakeAccounts(monkeypatch)
    project = labeling_project()
    for name in ("refused", "vera"):
        membership_set(project=project, user=user_create(username=name), role=Role.EXPERT)

    links = people.project_label_studio_users_ensure(project=project, client=None)

    assert [link.user.username for link in links] == ["vera"]


def test_a_link_to_a_label_studio_user_that_is_gone_is_made_again(monkeypatch):
    fake = FakeAccounts(monkeypatch)
    vera = user_create(username="vera", email="vera@plant.example")
    first = people.label_studio_user_ensure(user=vera, client=None)
    fake.users.clear()  # a fresh Label Studio

    again = people.label_studio_user_ensure(user=vera, client=None)

    assert again.ls_user_id != first.ls_user_id
    assert again.password == f"pw-{again.ls_user_id}"
    assert LabelStudioUser.objects.count() == 1


def test_a_linked_existing_user_keeps_no_password(monkeypatch):
    FakeAccounts(monkeypatch, existing={3: "vera@plant.example"})
    vera = user_create(username="vera", email="vera@plant.example")

    people.label_studio_user_ensure(user=vera, client=None)

    assert people.label_studio_login(user=vera)["password"] is None
    assert people.label_studio_login(user=user_create(username="nobody")) is None


def test_answers_are_named_after_the_loupe_user_of_their_label_studio_user(
    django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr("loupe.learning.loop.loop_trigger_on_labels", lambda **_: None)
    project = labeling_project(ls_project_id=7, overlap=2)
    vera = user_create(username="vera", email="vera@plant.example")
    LabelStudioUser.objects.create(user=vera, ls_user_id=42, email="vera@plant.example")
    (item,) = items_with_files(project, 1)
    selection = selection_round(project, [item])
    selection.items.update(ls_task_id=41)
    SelectionRound.objects.filter(pk=selection.pk).update(status=SelectionRound.Status.PUSHED)

    def answer(annotation_id, user, updated):
        annotation, task = annotation_body(
            annotation_id, task_id=41, item_id=item.pk, user=user, updated=updated
        )
        with django_capture_on_commit_callbacks(execute=True):
            events_apply(payload=webhook("ANNOTATION_CREATED", 7, annotation=annotation, task=task))

    answer(1, user=42, updated=1)
    answer(2, user=99, updated=1)  # a Label Studio user Loupe did not make
    answer(1, user=42, updated=2)

    named = dict(Annotation.objects.values_list("ls_annotation_id", "annotator"))
    assert named == {1: "vera", 2: "ls-user-99"}
    assert Annotation.objects.get(ls_annotation_id=1).user == vera
    assert Annotation.objects.get(ls_annotation_id=2).user is None


def test_the_logins_command_prints_each_labelers_label_studio_login():
    from io import StringIO

    from django.core.management import call_command

    for name, password in (("vera", "pw-v"), ("otto", "")):
        user = user_create(username=name)
        LabelStudioUser.objects.create(
            user=user,
            ls_user_id=len(name) + (1 if password else 0),
            email=f"{name}@users.loupe.local",
            password=password,
        )
    out = StringIO()

    call_command("loupe_label_studio_logins", stdout=out)

    assert out.getvalue().splitlines() == [
        "otto  otto@users.loupe.local / (their own Label Studio password)",
        "vera  vera@users.loupe.local / pw-v",
    ]
