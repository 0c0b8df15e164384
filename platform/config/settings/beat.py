"""Periodic work (celery beat). django-celery-beat's database scheduler copies these entries
into its tables at start-up, where the admin can change them."""

from config.env import env

# Every this many minutes a reconciliation lists the whole project to find deletions whose
# webhook was lost (the other runs pull only what changed since the cursor).
LOUPE_LABELING_FULL_SYNC_MINUTES = env.int("LOUPE_LABELING_FULL_SYNC_MINUTES", default=60)
LOUPE_LABELING_RECONCILE_SECONDS = env.int("LOUPE_LABELING_RECONCILE_SECONDS", default=60)

# Task names are those of loupe.jobs.TASKS (tests/workers/test_routing.py holds them to it).
CELERY_BEAT_SCHEDULE = {
    # Pulls annotations a lost webhook missed (Label Studio never retries a webhook).
    "labeling-reconcile": {
        "task": "labeling.reconcile_all",
        "schedule": float(LOUPE_LABELING_RECONCILE_SECONDS),
    },
    # Pushes rounds left as drafts by a Label Studio outage longer than the task's retries.
    "labeling-push-pending": {"task": "labeling.push_pending", "schedule": 300.0},
    # Re-sends the training, scoring and selection work a crashed worker left behind.
    "learning-resume": {"task": "learning.resume", "schedule": 60.0},
    # Projects with a retraining schedule get their loop when it is due, and any project whose
    # batch is done with new labels gets one (a trigger lost with a worker).
    "learning-scheduled-retraining": {"task": "learning.scheduled", "schedule": 60.0},
}
