import pytest


@pytest.fixture(autouse=True)
def _label_studio_elsewhere(label_studio_elsewhere):
    """No unit test of labeling reaches a Label Studio (tests/platform/conftest.py)."""
    yield
