"""A real Label Studio server for a pytest session.

`scripts/labelstudio.sh start` runs it on a free port, with its own data dir (a copy of the
migrated template, so it is up in seconds) and its own media root under the session's tmp
folder; the session's end stops it. Where Label Studio is not installed or does not start,
the tests that need it skip with the reason, or fail when `CI` is set.

Use it from a test module with
`from tests.integration.labelstudio_server import labelstudio_server  # noqa: F401`.
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import in_ci

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "labelstudio.sh"
# A cold template build migrates the database; allow for a slow shared machine.
START_TIMEOUT_S = 600


@dataclass(frozen=True)
class LabelStudioServer:
    url: str
    token: str
    username: str
    password: str
    port: int
    data_dir: Path
    media_root: Path
    env: dict


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(reason: str):
    if in_ci():
        pytest.fail(f"Label Studio is required in CI: {reason}", pytrace=False)
    pytest.skip(f"no Label Studio server: {reason}")


def start_server(base_dir: Path) -> LabelStudioServer:
    """Start a server whose data and media live under `base_dir`; skip or fail if it can't."""
    ls_home = Path(os.environ.get("LABEL_STUDIO_HOME") or REPO / "var" / "labelstudio")
    if not (ls_home / "venv" / "bin" / "label-studio").exists():
        _unavailable("not installed (run: scripts/labelstudio.sh install)")
    port = free_port()
    media_root = base_dir / "media"
    (media_root / "items").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "LABEL_STUDIO_PORT": str(port),
        "LABEL_STUDIO_DATA_DIR": str(base_dir / "data"),
        "LOUPE_MEDIA_ROOT": str(media_root),
    }
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True)
        _unavailable(f"not healthy within {START_TIMEOUT_S} s")
    if done.returncode != 0:
        _unavailable(f"start failed: {(done.stderr or done.stdout).strip()[-1500:]}")
    # Credentials are whatever the script used (its defaults or the caller's environment),
    # so the session reuses the migrated template instead of building one of its own.
    printed = dict(
        line.strip().split(":", 1) for line in done.stdout.splitlines() if line.startswith("  ")
    )
    return LabelStudioServer(
        url=f"http://127.0.0.1:{port}",
        token=printed["token"].strip(),
        username=printed["user"].strip(),
        password=printed["password"].strip(),
        port=port,
        data_dir=base_dir / "data",
        media_root=media_root,
        env=env,
    )


def stop_server(server: LabelStudioServer) -> None:
    subprocess.run(["bash", str(SCRIPT), "stop"], env=server.env, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def labelstudio_server(tmp_path_factory):
    """A running Label Studio, shared by the session; stopped at its end."""
    server = start_server(tmp_path_factory.mktemp("labelstudio"))
    yield server
    stop_server(server)


def point_loupe_at(server: LabelStudioServer, *, live_server, settings, secret: str) -> None:
    """Loupe's settings for the session's Label Studio: its URL and token, the webhook secret,
    webhooks to `live_server`, and the media folder Label Studio serves as local files."""
    from loupe.labeling import events

    settings.LABEL_STUDIO_URL = server.url
    settings.LABEL_STUDIO_API_TOKEN = server.token
    settings.LABEL_STUDIO_WEBHOOK_SECRET = secret
    settings.LOUPE_PUBLIC_URL = live_server.url
    settings.MEDIA_ROOT = str(server.media_root)
    events._emails_cache.update(at=0.0, emails={})


def wait_until(condition, timeout: float = 20.0) -> bool:
    """Label Studio posts webhooks from the request that saved the annotation, and the live
    server applies them in its own thread, so tests poll for the outcome."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
