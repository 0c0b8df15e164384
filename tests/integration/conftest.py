# One real Label Studio server for every integration module of the session.
from tests.integration.labelstudio_server import labelstudio_server  # noqa: F401
