"""docker-compose.yml is valid, holds the production services, carries no default secret and
exposes nothing beyond the host (no engine runs here, so `docker-compose config` is the
check)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.services import require_service

ROOT = Path(__file__).resolve().parents[1]


# What an operator puts in .env; the compose file has no default for any of them.
SECRETS = {
    "DJANGO_SECRET_KEY": "a-long-random-secret-key-for-this-test",
    "POSTGRES_PASSWORD": "pg-password-for-this-test",
    "LABEL_STUDIO_PASSWORD": "ls-password-for-this-test",
    "LABEL_STUDIO_API_TOKEN": "ls-token-for-this-test",
    "LABEL_STUDIO_WEBHOOK_SECRET": "webhook-secret-for-this-test",
}
PUBLIC_VALUES = ("loupe-demo-token-0123456789", "loupe-webhook-secret", "change-me")


def run_compose_config(secrets: dict) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        require_service("docker-compose", "install the Debian package docker-compose")
    env = {name: value for name, value in os.environ.items() if name not in SECRETS}
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**env, **secrets},
        cwd=ROOT,
    )


def compose_config() -> dict:
    result = run_compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_and_has_the_production_services():
    services = compose_config()["services"]

    expected = {"postgres", "redis", "web", "worker", "worker-gpu", "beat", "label-studio"}
    assert expected <= set(services)
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"
    assert "gpu" in services["worker-gpu"]["command"]
    assert services["label-studio"]["image"].startswith("heartexlabs/label-studio:1.23.2")
    for name in ("postgres", "redis", "web", "label-studio"):
        assert "healthcheck" in services[name], name
    assert any("media" in str(v) for v in services["label-studio"]["volumes"])


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_compose_stops_when_a_secret_is_missing(name):
    result = run_compose_config({k: v for k, v in SECRETS.items() if k != name})

    assert result.returncode != 0
    assert f"set {name}" in result.stderr


def test_compose_carries_no_public_secret():
    text = (ROOT / "docker-compose.yml").read_text()
    rendered = yaml.safe_dump(compose_config())

    for value in PUBLIC_VALUES:
        assert value not in text and value not in rendered
    web = compose_config()["services"]["web"]["environment"]
    assert web["LABEL_STUDIO_WEBHOOK_SECRET"] == SECRETS["LABEL_STUDIO_WEBHOOK_SECRET"]
    assert SECRETS["POSTGRES_PASSWORD"] in web["DATABASE_URL"]


def test_published_ports_listen_on_the_hosts_loopback_only():
    services = compose_config()["services"]

    published = {
        name: [str(port) for port in service.get("ports", [])] for name, service in services.items()
    }
    assert published["label-studio"] and published["web"]
    for name, ports in published.items():
        for port in ports:
            assert port.startswith("127.0.0.1:"), (name, port)


def test_label_studio_shares_no_network_with_the_databases():
    services = compose_config()["services"]

    def networks(name):
        return set(services[name].get("networks") or {"default"})

    assert networks("label-studio") == {"labeling"}
    for name in ("postgres", "redis"):
        assert not networks(name) & networks("label-studio"), name
    # Loupe's web (the webhook) and workers (pushes, reconciliation) still reach it.
    for name in ("web", "worker"):
        assert "labeling" in networks(name) and "backend" in networks(name), name
