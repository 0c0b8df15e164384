"""docker-compose.yml is valid and holds the production services (no engine runs here, so
`docker-compose config` is the check)."""

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.services import require_service

ROOT = Path(__file__).resolve().parents[1]


def compose_config() -> dict:
    binary = shutil.which("docker-compose")
    if binary is None:
        require_service("docker-compose", "install the Debian package docker-compose")
    env = {**os.environ, "DJANGO_SECRET_KEY": "x", "LABEL_STUDIO_PASSWORD": "y"}
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
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
