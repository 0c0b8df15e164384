"""A page that does not exist, or a server error, shows Loupe's own page, also in the demo."""

import importlib

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_missing_page_is_loupes_not_found_page():
    client = Client()
    client.force_login(UserFactory())

    response = client.get("/projects/no-such-project/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Not found</h1>" in html and "Back to your projects" in html
    api = client.get("/api/v1/no-such-endpoint/")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_a_server_error_is_loupes_page_not_a_traceback(settings):
    from django.urls import path

    from config import urls as root

    def broken(request):
        raise RuntimeError("secret detail")

    settings.ROOT_URLCONF = type(
        "Urls", (), {"urlpatterns": [path("broken/", broken), *root.urlpatterns],
                     "handler404": root.handler404, "handler500": root.handler500},
    )  # fmt: skip
    client = Client(raise_request_exception=False)

    response = client.get("/broken/")

    html = response.content.decode()
    assert response.status_code == 500 and "Something went wrong on the server" in html
    assert "secret detail" not in html and "Traceback" not in html


def test_the_demo_settings_keep_debug_off_unless_asked(monkeypatch):
    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    local = importlib.reload(importlib.import_module("config.django.local"))
    assert local.DEBUG is False and local.WHITENOISE_USE_FINDERS is True

    monkeypatch.setenv("DJANGO_DEBUG", "1")
    assert importlib.reload(local).DEBUG is True
