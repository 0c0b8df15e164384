"""In CI the suite must run on the real stack, not on the embedded defaults."""

import pytest
from django.conf import settings
from django.db import connection

from tests.services import in_ci, tcp_open

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
def test_ci_runs_on_postgresql():
    if not in_ci():
        pytest.skip("outside CI the embedded SQLite default is fine")
    assert connection.vendor == "postgresql", "CI must set DATABASE_URL to PostgreSQL"
    with connection.cursor() as cursor:
        cursor.execute("select version()")
        assert "PostgreSQL" in cursor.fetchone()[0]


@pytest.mark.redis
def test_ci_uses_a_redis_broker_that_answers():
    if not in_ci():
        pytest.skip("outside CI the embedded filesystem broker is fine")
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert tcp_open(settings.CELERY_BROKER_URL, 6379), "Redis does not answer"
