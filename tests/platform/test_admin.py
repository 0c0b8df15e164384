"""The admin lists every model of Loupe, and the counts the database keeps are read-only."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from loupe.datasets.models import Item
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

LOUPE_MODELS = [m for m in apps.get_models() if m.__module__.startswith("loupe.")]


def test_every_loupe_model_is_in_the_admin():
    missing = [m.__name__ for m in LOUPE_MODELS if not admin.site.is_registered(m)]
    assert missing == []


@pytest.fixture
def superuser_client():
    client = Client()
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    return client


@pytest.mark.parametrize("model", LOUPE_MODELS, ids=lambda m: m.__name__)
def test_each_changelist_opens(superuser_client, model):
    ItemFactory()  # some rows, so the kept counts list one
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert superuser_client.get(url).status_code == 200


def test_kept_counts_cannot_be_edited_by_hand(superuser_client):
    ItemFactory()
    add = reverse("admin:datasets_itemstatecount_add")
    assert superuser_client.get(add).status_code == 403
    assert superuser_client.get(reverse("admin:datasets_item_add")).status_code == 200
    assert Item.objects.count() == 1
