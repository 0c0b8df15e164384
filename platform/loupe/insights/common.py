"""Pieces every insight shares: the project's classes, the scores the statistics read, and
portable raw SQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.utils import timezone

from loupe.learning.models import ModelVersion, RunStatus, ScoringRun
from loupe.projects.models import Project

# Weighting of the "effective number of samples"; the value training uses (ml.training).
EFFECTIVE_BETA = 0.999
DEFAULT_WINDOW_DAYS = 14


def latest_scoring_run(project: Project) -> ScoringRun | None:
    """The newest finished scoring of the pool: its model version is the one whose
    predictions the statistics show (a newer version that has not scored yet has none)."""
    return (
        ScoringRun.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .select_related("model_version")
        .order_by("-id")
        .first()
    )


def latest_scored_version(project: Project) -> ModelVersion | None:
    run = latest_scoring_run(project)
    return run.model_version if run else None


def fetch_all(sql: str, params: list | tuple) -> list[tuple]:
    """Runs one read-only query. The SQL in this app is written to run unchanged on SQLite
    and PostgreSQL: no FILTER clauses, no casts beyond CAST(... AS ...)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def window_first_day(days: int, now: datetime | None = None) -> date:
    """The first of the last `days` UTC days, today included: the window of the pace
    statistics, whole days as the per-day counts are kept."""
    return (now or timezone.now()).astimezone(UTC).date() - timedelta(days=days - 1)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None
