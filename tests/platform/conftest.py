import pytest

from loupe.labeling import events
from tests.integration.labelstudio_server import free_port


@pytest.fixture
def label_studio_elsewhere(settings):
    """No Label Studio is reached: a refused port, and no SDK retries."""
    settings.LABEL_STUDIO_URL = f"http://127.0.0.1:{free_port()}"
    settings.LABEL_STUDIO_MAX_RETRIES = 0
    events._emails_cache.update(at=0.0, emails={})
    yield
    events._emails_cache.update(at=0.0, emails={})
