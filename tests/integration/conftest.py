"""One real Label Studio server for every integration module of the session, and Loupe
pointed at it."""

import pytest

from loupe.labeling import adapter
from tests.integration.labelstudio_server import (
    labelstudio_server,  # noqa: F401
    point_loupe_at,
)
from tests.worker_process import WorkerProcess


@pytest.fixture
def server(labelstudio_server, live_server, settings):  # noqa: F811
    """Loupe configured for the session's Label Studio; its webhooks reach `live_server`."""
    point_loupe_at(
        labelstudio_server, live_server=live_server, settings=settings, secret="it-secret"
    )
    return labelstudio_server


@pytest.fixture
def client(server):
    """The SDK client, as Loupe's service account."""
    return adapter.client_for(server.url, server.token)


@pytest.fixture
def stack(labelstudio_server, live_server, settings, import_root):  # noqa: F811
    """Loupe's web side in this process (webhooks reach `live_server`), its jobs on a real
    worker process, both talking to the session's Label Studio."""
    point_loupe_at(
        labelstudio_server, live_server=live_server, settings=settings, secret="stack-secret"
    )
    settings.LOUPE_JOBS_EAGER = False
    worker = WorkerProcess(
        extra_env={
            "LABEL_STUDIO_URL": labelstudio_server.url,
            "LABEL_STUDIO_API_TOKEN": labelstudio_server.token,
            "LABEL_STUDIO_WEBHOOK_SECRET": "stack-secret",
            "LOUPE_PUBLIC_URL": live_server.url,
        }
    )
    yield labelstudio_server, worker
    worker.stop()
