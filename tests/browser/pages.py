"""Logging in through the real login form."""

from loupe.accounts.services import membership_set, user_create

PASSWORD = "pw-secret-123"


def member(project, username: str, role: str):
    user = user_create(username=username, password=PASSWORD, role=role)
    membership_set(project=project, user=user, role=role)
    return user


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
