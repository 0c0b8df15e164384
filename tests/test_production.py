"""Production settings: no public secret, HTTPS settings from the environment, a clean deploy
check, and the image's build steps (install, collectstatic) succeed."""

import importlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ("DJANGO_SECRET_KEY", "LABEL_STUDIO_WEBHOOK_SECRET", "LABEL_STUDIO_API_TOKEN")
REAL_SECRETS = {
    "DJANGO_SECRET_KEY": "q8VfL2m_0rT7wXz4Kp9sYc3JbN6hGd1eRu5aMi8oPl2tWy7vQx",
    "LABEL_STUDIO_WEBHOOK_SECRET": "3f9c2b7e41d08a6c5e1f93b27d4a0c86",
    "LABEL_STUDIO_API_TOKEN": "9e4b1c7d2a6f8e03b5d9c1a7f4e2b8d6c0a3f5e7",
}
PUBLIC_VALUES = [
    ("DJANGO_SECRET_KEY", "loupe-insecure-development-key"),
    ("LABEL_STUDIO_WEBHOOK_SECRET", "loupe-webhook-secret"),
    ("LABEL_STUDIO_WEBHOOK_SECRET", "change-me"),
    ("LABEL_STUDIO_API_TOKEN", "loupe-demo-token-0123456789"),
]


def production_settings(monkeypatch, **environ):
    """The module config.django.production, loaded afresh with `environ` on top of the real
    secrets (a value of None removes the variable)."""
    for name, value in {**REAL_SECRETS, **environ}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    fresh = ("config.django.production", "config.settings.security")
    saved = {name: sys.modules.pop(name) for name in fresh if name in sys.modules}
    try:
        return importlib.import_module("config.django.production")
    finally:
        for name in fresh:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


@pytest.mark.parametrize("name", SECRETS)
@pytest.mark.parametrize("value", [None, "", "   "])
def test_production_refuses_to_start_without_a_secret(monkeypatch, name, value):
    with pytest.raises(ImproperlyConfigured, match=f"{name} is not set"):
        production_settings(monkeypatch, **{name: value})


@pytest.mark.parametrize(("name", "value"), PUBLIC_VALUES)
def test_production_refuses_the_public_default_secrets(monkeypatch, name, value):
    with pytest.raises(ImproperlyConfigured, match=f"{name} is a public default"):
        production_settings(monkeypatch, **{name: value})


def test_production_uses_its_secrets_and_https_by_default(monkeypatch):
    monkeypatch.delenv("DJANGO_BEHIND_PROXY", raising=False)
    settings = production_settings(monkeypatch)

    used = {
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "LABEL_STUDIO_WEBHOOK_SECRET": settings.LABEL_STUDIO_WEBHOOK_SECRET,
        "LABEL_STUDIO_API_TOKEN": settings.LABEL_STUDIO_API_TOKEN,
    }
    assert used == REAL_SECRETS
    assert settings.SECURE_SSL_REDIRECT is True
    assert settings.SECURE_HSTS_SECONDS >= 365 * 24 * 3600
    assert settings.SECURE_HSTS_INCLUDE_SUBDOMAINS is True
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE
    # Where gunicorn may be reached directly, a client's X-Forwarded-Proto is not believed.
    assert not hasattr(settings, "SECURE_PROXY_SSL_HEADER")


def test_https_settings_come_from_the_environment(monkeypatch):
    settings = production_settings(
        monkeypatch,
        DJANGO_BEHIND_PROXY="true",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_HSTS_SECONDS="3600",
        DJANGO_SECURE_HSTS_PRELOAD="true",
    )

    assert settings.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert settings.SECURE_SSL_REDIRECT is False
    assert (settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_PRELOAD) == (3600, True)
    assert "security.W021" not in settings.SILENCED_SYSTEM_CHECKS


def subprocess_env(tmp_path, **extra) -> dict:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in SECRETS and not name.startswith(("DJANGO_", "LOUPE_", "SECURE_"))
    }
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env["LOUPE_VAR_DIR"] = str(tmp_path / "var")
    env.update(extra)
    return env


def test_the_deploy_check_is_clean_with_real_secrets(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=subprocess_env(
            tmp_path, DJANGO_SETTINGS_MODULE="config.django.production", **REAL_SECRETS
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def dockerfile_steps() -> tuple[list[tuple[str, str]], list[str]]:
    """(COPY sources and destinations, the steps of the RUN that follows them)."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copies = [tuple(line.split()[1:]) for line in lines if line.startswith("COPY ")]
    last_copy = max(i for i, line in enumerate(lines) if line.startswith("COPY "))
    run = next(line for line in lines[last_copy:] if line.startswith("RUN "))
    return copies, [step.strip() for step in run.removeprefix("RUN ").split("&&")]


def test_the_image_build_steps_succeed(tmp_path):
    copies, steps = dockerfile_steps()
    # What this test runs; a change to the Dockerfile's steps changes it here too.
    assert steps == ["pip install -e .", "sh scripts/collectstatic.sh"]

    # The image's context: only what the Dockerfile copies.
    app = tmp_path / "app"
    app.mkdir()
    for *sources, destination in copies:
        for source in sources:
            target = app / destination
            if destination.endswith("/"):
                target = target / Path(source).name
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source,
                    target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, target)
    env = subprocess_env(tmp_path)
    env.pop("LOUPE_VAR_DIR")

    # Install: the package builds from that context (offline; the dependencies are those of
    # this environment).
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--wheel-dir", str(tmp_path / "wheel"), str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "config/django/production.py",
        "loupe/accounts/lockout.py",
        "workers/labeling.py",
        "ml/__init__.py",
    ):
        assert module in names, module

    # collectstatic under production settings, into the context's own var/ folder.
    collected = subprocess.run(
        ["sh", "scripts/collectstatic.sh"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    manifest = (app / "var" / "static" / "staticfiles.json").read_text()
    hashed_chart = (
        r'"vendor/chart-4\.6\.1\.umd\.min\.js": "vendor/chart-4\.6\.1\.umd\.min\.\w+\.js"'
    )
    assert re.search(hashed_chart, manifest)
    assert '"loupe/loupe.css"' in manifest
