"""Label Studio sync speed: Loupe's services beside the raw SDK calls doing the same work.

Starts a throw-away Label Studio (scripts/labelstudio.sh, like the test session does) and a
throw-away SQLite database, then measures:

- push: `selection_round_push` of a round of N picks with predictions (project sync,
  existing-task lookup, bulk import, Loupe's bookkeeping) vs `projects.import_tasks` of the
  same task bodies in batches of 500;
- reconcile: `project_reconcile(full=True)` of N annotations (listing, applying,
  ground truth) vs listing the same tasks with their annotations through `tasks.list`.

Annotations are made in bulk by Label Studio's "predictions -> annotations" action.

    .venv/bin/python benchmarks/label_studio_sync.py [--n 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]


def _start_label_studio(base: Path):
    os.environ.setdefault("LABEL_STUDIO_HOME", str(Path.home() / ".cache/loupe/labelstudio"))
    from tests.integration.labelstudio_server import start_server

    try:
        return start_server(base)
    except BaseException as exc:  # start_server skips (pytest) when it cannot start
        raise SystemExit(f"Label Studio did not start: {exc}") from None


def _setup_django(base: Path, server) -> None:
    from tests.integration.labelstudio_server import free_port

    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.django.local",
        LOUPE_VAR_DIR=str(base / "var"),
        DATABASE_URL=f"sqlite:///{base / 'bench.sqlite3'}",
        LOUPE_MEDIA_ROOT=str(server.media_root),
        LABEL_STUDIO_URL=server.url,
        LABEL_STUDIO_API_TOKEN=server.token,
        # Nobody listens: Label Studio's webhooks fail fast, as when Loupe is down.
        LOUPE_PUBLIC_URL=f"http://127.0.0.1:{free_port()}",
        LOUPE_LOG_LEVEL="WARNING",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    # A worker has the learning stack (torch) loaded already; new ground truth reaches it
    # through the retraining trigger, so import it before the clock starts.
    import loupe.learning.loop  # noqa: F401


def _round(n: int):
    from loupe.datasets.models import Item, ItemState
    from loupe.learning.models import SelectionItem, SelectionRound
    from loupe.projects.services import project_create
    from tests.platform.labeling.builders import model_version

    project = project_create(
        name=f"Bench {time.time_ns()}",
        created_by=None,
        classes=["good", "scratch", "dent", "stain"],
        guidelines="Label the visible defect.",
        retrain_every_n_labels=0,
    )
    items = Item.objects.bulk_create(
        Item(
            project=project,
            file=f"items/{i % 256:02x}/{i:064x}.png",
            sha256=f"{i:064x}",
            size_bytes=100,
            width=32,
            height=32,
            state=ItemState.QUEUED,
        )
        for i in range(n)
    )
    version = model_version(project)
    selection = SelectionRound.objects.create(
        project=project, number=1, model_version=version, strategy="margin", batch_size=n
    )
    classes = list(project.classes.order_by("order"))
    SelectionItem.objects.bulk_create(
        SelectionItem(
            selection_round=selection,
            item=item,
            rank=rank,
            score=1.0 / rank,
            strategy="margin",
            predicted_class=classes[rank % len(classes)],
            confidence=0.4 + (rank % 50) / 100,
            reason=f"margin score {1.0 / rank:.3f}",
        )
        for rank, item in enumerate(items, start=1)
    )
    return project, selection


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="tasks and annotations")
    args = parser.parse_args()
    n = args.n

    with tempfile.TemporaryDirectory(prefix="loupe-ls-bench-") as tmp:
        base = Path(tmp)
        server = _start_label_studio(base / "labelstudio")
        try:
            _setup_django(base, server)
            rows = _run(server, n)
        finally:
            from tests.integration.labelstudio_server import stop_server

            stop_server(server)
    print(f"\nLabel Studio sync, {n} tasks (one run, this machine, SQLite on both sides)\n")
    head = f"{'operation':<34}{'Loupe s':>9}{'tasks/s':>9}{'raw SDK s':>11}{'tasks/s':>9}"
    print(head + f"{'Loupe/raw':>11}")
    print("-" * (len(head) + 11))
    for name, ours, raw in rows:
        print(
            f"{name:<34}{ours:>9.2f}{n / ours:>9.0f}{raw:>11.2f}{n / raw:>9.0f}{ours / raw:>10.2f}x"
        )


def _run(server, n: int) -> list[tuple[str, float, float]]:
    from loupe.labeling import adapter
    from loupe.labeling.ls_payloads import labeling_config, task_payload
    from loupe.labeling.models import Annotation, GroundTruth
    from loupe.labeling.services import project_reconcile, selection_round_push
    from loupe.labeling.sync import push_tasks

    client = adapter.client_for(server.url, server.token, timeout=120)
    project, selection = _round(n)

    # Push: Loupe's service, then the raw SDK import of the same bodies into a twin project
    # set up like Loupe's (same config, local-files storage and webhook), so that both sides
    # pay what Label Studio does per task.
    adapter_push = adapter.tasks_push
    inside = []

    def timed_adapter_push(*a, **k):
        seconds, result = _timed(lambda: adapter_push(*a, **k))
        inside.append(seconds)
        return result

    adapter.tasks_push = timed_adapter_push
    try:
        ours_push, _ = _timed(
            lambda: selection_round_push(selection_round=selection, client=client)
        )
    finally:
        adapter.tasks_push = adapter_push
    selection.refresh_from_db()
    assert selection.status == "pushed", selection.push_error
    bodies = [task_payload(task) for _, task in push_tasks(selection)]
    twin = adapter.project_ensure(
        client,
        title="raw twin",
        label_config=labeling_config("image_classification", ["good", "scratch", "dent", "stain"]),
    )
    adapter.local_storage_ensure(client, project_id=twin, path=str(server.media_root / "items"))
    adapter.webhook_ensure(
        client,
        project_id=twin,
        url=os.environ["LOUPE_PUBLIC_URL"] + "/twin/",
        secret_header=("X-Loupe-Webhook-Secret", "x"),
    )

    def raw_push():
        for start in range(0, len(bodies), 500):
            client.projects.import_tasks(
                twin, request=bodies[start : start + 500], return_task_ids=True
            )

    raw_push_s, _ = _timed(raw_push)

    # Annotations: the expert accepts every pre-annotation, in one bulk action.
    project.refresh_from_db()
    client.actions.create(
        id="predictions_to_annotations",
        project=project.ls_project_id,
        selected_items={"all": True, "excluded": []},
    )

    ours_rec, outcome = _timed(lambda: project_reconcile(project=project, full=True, client=client))
    assert Annotation.objects.filter(item__project=project).count() == n, outcome
    assert GroundTruth.objects.filter(item__project=project).count() == n

    def raw_list():
        count = 0
        for task in client.tasks.list(project=project.ls_project_id, fields="all", page_size=500):
            count += len(task.annotations or [])
        assert count == n, count

    raw_rec_s, _ = _timed(raw_list)
    # Again, with everything already in Loupe: the cost of a no-change reconciliation.
    again_s, again = _timed(lambda: project_reconcile(project=project, full=True, client=client))
    assert again["applied"] == 0, again
    return [
        ("push with predictions", ours_push, raw_push_s),
        ("  of which adapter.tasks_push", inside[0], raw_push_s),
        ("reconcile (list + apply)", ours_rec, raw_rec_s),
        ("reconcile again, nothing new", again_s, raw_rec_s),
    ]


if __name__ == "__main__":
    main()
