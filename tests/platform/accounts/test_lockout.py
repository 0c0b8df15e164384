"""Repeated failed sign-ins lock the username out from that address, on every login form;
weak passwords are refused for new users."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from loupe.accounts.models import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-secret-123"  # the factories' password


@pytest.fixture(autouse=True)
def _fresh_counters(settings):
    settings.LOUPE_LOGIN_MAX_FAILURES = 3
    settings.LOUPE_LOGIN_MAX_FAILURES_PER_ADDRESS = 10
    settings.LOUPE_LOGIN_LOCKOUT_SECONDS = 600
    cache.clear()
    yield
    cache.clear()


def token(client, username, password, address="10.0.0.1", **headers):
    return client.post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=address,
        **headers,
    )


def web_login(client, username, password, address="10.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_token_endpoint_locks_a_username_out_after_repeated_failures():
    user = UserFactory()
    client = Client()

    answers = [token(client, user.username, "wrong").status_code for _ in range(3)]
    locked = token(client, user.username, PASSWORD)

    assert answers == [401, 401, 401]
    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= 600
    error = locked.json()["error"]
    assert error["code"] == "too_many_attempts" and "Try again in 10 minutes" in error["message"]
    # Someone else, elsewhere, is not locked out of the account.
    assert token(client, user.username, PASSWORD, address="10.0.0.2").status_code == 200


def test_the_lockout_ends_after_its_window(monkeypatch):
    user = UserFactory()
    client = Client()
    for _ in range(3):
        token(client, user.username, "wrong")
    assert token(client, user.username, PASSWORD).status_code == 429

    later = time.time() + 601
    monkeypatch.setattr(time, "time", lambda: later)

    assert token(client, user.username, PASSWORD).status_code == 200


def test_a_success_forgets_earlier_failures():
    user = UserFactory()
    client = Client()
    for _ in range(2):
        token(client, user.username, "wrong")
    assert token(client, user.username, PASSWORD).status_code == 200

    answers = [token(client, user.username, "wrong").status_code for _ in range(2)]

    assert answers == [401, 401]
    assert token(client, user.username, PASSWORD).status_code == 200


def test_one_address_trying_many_usernames_is_locked_out():
    user = UserFactory()
    client = Client()
    for n in range(10):
        token(client, f"guess{n}", "password")

    assert token(client, user.username, PASSWORD).status_code == 429
    assert token(client, user.username, PASSWORD, address="10.0.0.9").status_code == 200


def test_the_web_login_page_says_how_long_to_wait_and_refuses_even_the_right_password():
    user = UserFactory()
    client = Client()
    for _ in range(3):
        assert web_login(client, user.username, "wrong").status_code == 200

    locked = web_login(client, user.username, PASSWORD)

    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert "Too many failed sign-ins. Try again in 10 minutes." in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Failures on the web page and on the API count together.
    assert token(client, user.username, PASSWORD).status_code == 429


def test_the_admin_login_refuses_a_locked_out_user():
    get_user_model().objects.create_superuser("root", "", "root-secret-phrase")
    client = Client()
    for _ in range(3):
        token(client, "root", "wrong")

    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": "root-secret-phrase"},
        REMOTE_ADDR="10.0.0.1",
    )

    assert response.status_code == 200  # the form again, not the redirect of a sign-in
    assert "_auth_user_id" not in client.session


def test_forwarded_addresses_count_only_behind_the_proxy(settings):
    user = UserFactory()
    client = Client()
    # Exposed directly: a client rotating X-Forwarded-For is still one address.
    for n in range(3):
        token(client, user.username, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    rotated = token(client, user.username, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.7")
    assert rotated.status_code == 429

    cache.clear()
    settings.LOUPE_BEHIND_PROXY = True
    # Behind the proxy every request comes from the proxy; the address it adds counts, not
    # what the client wrote before it.
    for n in range(3):
        token(client, user.username, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.5")
    assert (
        token(client, user.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.5").status_code
        == 429
    )
    assert (
        token(client, user.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.6").status_code
        == 200
    )


@pytest.mark.parametrize("password", ["password", "12345678", "mariana-lopez", "short"])
def test_weak_passwords_are_refused_for_new_users(api_client, password):
    api_client.force_authenticate(UserFactory(role=Role.ADMIN))

    response = api_client.post(
        "/api/v1/users/",
        {"username": "mariana-lopez", "password": password, "role": "expert"},
        format="json",
    )

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["details"]["password"]
    assert not get_user_model().objects.filter(username="mariana-lopez").exists()
