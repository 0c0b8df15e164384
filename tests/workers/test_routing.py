"""One table of task names and queues (loupe.jobs.TASKS): the workers register exactly its
names, routing and enqueueing read it, and beat names only tasks from it."""

from django.conf import settings

from config.celery import app
from loupe import jobs
from workers.routing import route


def _registered() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_the_workers_register_exactly_the_tasks_of_the_table():
    assert _registered() == set(jobs.TASKS)
    assert set(jobs.TASKS.values()) <= set(jobs.QUEUES)


def test_training_and_scoring_are_routed_to_the_gpu_queue_whoever_sends_them():
    assert route(jobs.TRAIN, (), {}, {}) == {"queue": "gpu"}
    assert route(jobs.SCORE_CHUNK, (), {}, {}) == {"queue": "gpu"}
    assert route(jobs.PUSH_ROUND, (), {}, {}) == {"queue": "default"}
    assert app.amqp.router.route({}, jobs.TRAIN, (), {})["queue"].name == "gpu"


def test_beat_names_only_tasks_of_the_table():
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} <= set(jobs.TASKS)


def test_enqueue_sends_to_the_queue_of_the_table(
    db, monkeypatch, settings, django_capture_on_commit_callbacks
):
    sent = []
    settings.LOUPE_JOBS_EAGER = False
    monkeypatch.setattr(
        app, "send_task", lambda name, kwargs, queue: sent.append((name, kwargs, queue))
    )
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue(jobs.SCORE_CHUNK, chunk_id=3)
        assert sent == []  # sent once the transaction commits
    assert sent == [(jobs.SCORE_CHUNK, {"chunk_id": 3}, "gpu")]
