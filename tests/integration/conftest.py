"""One real Label Studio server for every integration module of the session, and Loupe
pointed at it."""

import pytest

from loupe.labeling import adapter
from tests.integration.labelstudio_server import (
    labelstudio_server,  # noqa: F401
    point_loupe_at,
)


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
