"""Faults of the real services while Loupe works, and what is left afterwards. Prints a
markdown table, one row per fault:

    1 PostgreSQL restarted mid-training (pg_ctlcluster <version> main restart)
    2 Redis restarted mid-scoring (shutdown nosave, 5 s down, started again: queued messages
      are lost, Redis keeps nothing on disk here)
    3 Label Studio stopped mid-push (once the first 500 of 1,100 tasks exist), started again
    4 Label Studio stopped mid-reconcile (after the first page of the listing), started again
    5 the disk full while a model artifact is written (a 64 KiB tmpfs over media/models/)
    7 the same over media/scoring/ (scoring chunk artifacts)
    6 a worker SIGKILLed (its process group) a third into an import of 3,000 files

    .venv/bin/python benchmarks/fault_matrix.py [--only 3,4,5,7,6,1,2] [--import-files 3000]
                                                [--quiet-wait 600] [--keep]

Everything runs on the real stack, as root (faults 5 and 7 mount a tmpfs; where mounting is
refused their rows say so): PostgreSQL (database `loupe_faults`, created and dropped here),
Redis (database 6, flushed before and after), real `celery worker` processes, and a real Label
Studio (scripts/labelstudio.sh on a free port with its own data dir; restarted on the same
port and data). Each fault gets a fresh project of generated 32x32 inspection images. Workers
run with LOUPE_STALE_AFTER_SECONDS=10 and LOUPE_MIN_TRAIN_STEPS=300, so training lasts long
enough to be interrupted and abandoned work is taken over after 10 s.

Every 3 s the script does what beat does every minute or so: `runs_resume`, `loops_scheduled`,
`rounds_push_pending` and `projects_reconcile_all` (not while Redis is down). Webhooks point
at a closed port the whole time, so annotations reach Loupe only through reconciliation. After
a full disk nothing retries the failed loop by itself (the projects' labels are imported, not
new expert labels): the script starts one as the retrain button does.

Restarting PostgreSQL or Redis disturbs whatever else uses them: before faults 1 and 2 the
script waits (up to --quiet-wait seconds) until no pytest process runs, and skips them if one
still does; they run last. Both services are always started again.

After each fault it checks that nothing was lost or duplicated: one model version per
succeeded training run and none for another run, every pool item scored exactly once by the
version, Label Studio's tasks == the round's picks (no item twice), Loupe's annotations ==
Label Studio's (ids and classes), items and labels == files imported. "recover s": from the
service back (the space back, the new worker started) until the interrupted work was done:
the training run (1, 5), the loop (2), the push (3), every annotation pulled (4, from the
last change in Label Studio), the scoring run (7), the import (6).
"""

import argparse
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
SERVER = "postgres://postgres@127.0.0.1:5432"
DB = "loupe_faults"
REDIS_URL = "redis://127.0.0.1:6379/6"
STALE_S = 10
BEAT_S = 3.0
IMAGE_SIZE = 32
CHUNK_SIZE = 25
WORKER_ARGS = ["-m", "celery", "-A", "config.celery", "worker", "-Q", "default,gpu"]
WORKER_ARGS += ["--concurrency", "1", "--loglevel", "INFO", "--without-gossip"]
WORKER_ARGS += ["--without-mingle", "--without-heartbeat"]
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379"]
REDIS_START += ["--save", "", "--appendonly", "no"]


@dataclass
class Row:
    fault: str
    happened: str = ""
    recover_s: float | None = None
    checked: str = ""
    problems: list[str] = field(default_factory=list)
    exercised: bool = True

    @property
    def verdict(self) -> str:
        if not self.exercised:
            return "not exercised"
        return "held" if not self.problems else "BROKE: " + "; ".join(self.problems)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- services ---------------------------------------------------------------------------------


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def database_recreate() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")


def database_drop() -> None:
    import psycopg

    for _ in range(10):
        try:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            return
        except psycopg.OperationalError:
            time.sleep(1)


def redis_flush() -> None:
    import redis

    with contextlib.suppress(redis.ConnectionError):
        redis.Redis.from_url(REDIS_URL).flushdb()


def redis_up() -> bool:
    return run(["redis-cli", "-p", "6379", "ping"]).stdout.strip() == "PONG"


def postgres_up() -> bool:
    return run(["pg_isready", "-h", "127.0.0.1"]).returncode == 0


def postgres_version() -> str:
    return sorted(os.listdir("/etc/postgresql"), key=lambda v: float(v))[-1]


def others_testing() -> list[str]:
    out = run(["pgrep", "-af", "pytest"]).stdout.splitlines()
    return [line for line in out if "pgrep" not in line]


def wait_quiet(limit: float) -> bool:
    deadline = time.monotonic() + limit
    while others := others_testing():
        if time.monotonic() > deadline:
            log(f"other test runs still active after {limit:.0f} s: {len(others)}")
            return False
        log(f"waiting for {len(others)} pytest process(es) of others to end ...")
        time.sleep(20)
    return True


class Worker:
    """A real `celery worker` process (and its pool child) in its own process group."""

    count = 0

    def __init__(self, log_dir: Path):
        Worker.count += 1
        self.log_path = log_dir / f"worker-{Worker.count}.log"
        env = {**os.environ, "LOUPE_LOG_LEVEL": "INFO"}
        with self.log_path.open("wb") as handle:
            self.process = subprocess.Popen(
                [sys.executable, *WORKER_ARGS, "-n", f"faults{Worker.count}@%h"],
                cwd=ROOT,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 180
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.3)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


class LabelStudio:
    """scripts/labelstudio.sh on a free port with its own data dir; restarted on the same
    port and data, as an operator restarting the service would."""

    def __init__(self, base_dir: Path):
        from tests.integration.labelstudio_server import start_server

        os.environ.setdefault(
            "LABEL_STUDIO_HOME", str(Path.home() / ".cache" / "loupe" / "labelstudio")
        )
        try:
            self.server = start_server(base_dir)
        except BaseException as exc:  # the helper skips a pytest test when it cannot start
            raise SystemExit(f"Label Studio did not start: {exc}") from None

    def stop(self) -> None:
        from tests.integration.labelstudio_server import stop_server

        stop_server(self.server)

    def start(self) -> None:
        script = ROOT / "scripts" / "labelstudio.sh"
        done = run(["bash", str(script), "start"], env=self.server.env, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"Label Studio did not start again: {done.stderr[-1500:]}")

    def mark(self) -> None:
        """served() looks only at requests logged from now on."""
        self.mark_at = (self.server.data_dir / "labelstudio.log").stat().st_size

    def served(self, *parts: str) -> bool:
        """Whether Label Studio logged a request with all `parts` since mark()."""
        with (self.server.data_dir / "labelstudio.log").open("rb") as handle:
            handle.seek(self.mark_at)
            lines = handle.read().decode(errors="replace").splitlines()
        return any(all(p in line for p in parts) for line in lines)

    def client(self):
        from loupe.labeling import adapter

        return adapter.client_for(self.server.url, self.server.token)

    def task_count(self, ls_project_id: int) -> int:
        """Tasks in the project, read from Label Studio's own database file (no request)."""
        path = self.server.data_dir / "label_studio.sqlite3"
        try:
            with contextlib.closing(
                sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
            ) as conn:
                return conn.execute(
                    "SELECT count(*) FROM task WHERE project_id = ?", [ls_project_id]
                ).fetchone()[0]
        except sqlite3.OperationalError:
            return -1  # locked by a write in progress

    def tasks(self, ls_project_id: int) -> list[tuple[int, int]]:
        """(task id, Loupe item id) of every task of the project."""
        pager = self.client().tasks.list(
            project=ls_project_id, fields="task_only", include="id,data", page_size=500
        )
        return [(int(t.id), int((t.data or {}).get("loupe_item_id", -1))) for t in pager]

    def annotations(self, ls_project_id: int) -> dict[int, tuple[int, list[str]]]:
        """annotation id -> (task id, chosen classes) of every annotation of the project."""
        from loupe.labeling.ls_payloads import chosen_classes

        out = {}
        pager = self.client().tasks.list(project=ls_project_id, fields="all", page_size=500)
        for task in pager:
            for a in task.annotations or []:
                a = a if isinstance(a, dict) else a.model_dump(mode="json")
                out[int(a["id"])] = (int(task.id), list(chosen_classes(a.get("result") or [])))
        return out


# --- the Django side --------------------------------------------------------------------------


def setup(var_dir: Path, ls: LabelStudio) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on: webhooks go nowhere
        sock.bind(("127.0.0.1", 0))
        nowhere = sock.getsockname()[1]
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.django.local",
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": f"{SERVER}/{DB}",
            "CELERY_BROKER_URL": REDIS_URL,
            "LOUPE_VAR_DIR": str(var_dir),
            "LOUPE_MEDIA_ROOT": str(ls.server.media_root),
            "LOUPE_IMPORT_ROOTS": str(var_dir / "imports"),
            "LOUPE_UPLOAD_DIR": str(var_dir / "uploads"),
            "LOUPE_STALE_AFTER_SECONDS": str(STALE_S),
            "LOUPE_MIN_TRAIN_STEPS": "300",
            "LOUPE_EARLY_STOPPING_PATIENCE": "0",
            "LOUPE_SCORING_CHUNK_SIZE": str(CHUNK_SIZE),
            "LOUPE_LOG_LEVEL": "WARNING",
            "LABEL_STUDIO_URL": ls.server.url,
            "LABEL_STUDIO_API_TOKEN": ls.server.token,
            "LABEL_STUDIO_WEBHOOK_SECRET": "fault-matrix-webhook-secret",
            "LOUPE_PUBLIC_URL": f"http://127.0.0.1:{nowhere}",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT)]),
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def db_errors() -> tuple:
    from django.db import InterfaceError, OperationalError

    return (OperationalError, InterfaceError)


def retrying(fn):
    """fn(), or None when the database connection broke (PostgreSQL restarting): the
    connection is dropped so the next call opens a fresh one."""
    from django.db import connections

    try:
        return fn()
    except db_errors():
        connections.close_all()
        return None


class Beat:
    """What beat sends every minute, every BEAT_S seconds here."""

    def __init__(self):
        self.last = 0.0
        self.paused = False

    def tick(self, force: bool = False) -> None:
        if self.paused or (not force and time.monotonic() - self.last < BEAT_S):
            return
        from loupe.labeling.services import projects_reconcile_all, rounds_push_pending
        from loupe.learning.loop import loops_scheduled, runs_resume

        self.last = time.monotonic()
        retrying(runs_resume)
        retrying(loops_scheduled)
        retrying(rounds_push_pending)
        retrying(projects_reconcile_all)


BEAT = Beat()


def wait_for(predicate, *, timeout: float, interval: float = 0.2, beat: bool = True):
    """predicate()'s first truthy value, ticking beat meanwhile; None after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = retrying(predicate)
        if value:
            return value
        if beat:
            BEAT.tick()
        time.sleep(interval)
    return None


def make_folder(dest: Path, *, labeled: int, pool: int, seed: int) -> dict:
    """dest/<class>/*.png: `labeled` images, balanced over the classes; dest/*.png: `pool`
    unlabeled images in the classes' usual proportions."""
    from ml.synthetic import INSPECTION_CLASSES, make_inspection_dataset

    if labeled:
        per = labeled // len(INSPECTION_CLASSES)
        make_inspection_dataset(
            dest,
            image_size=IMAGE_SIZE,
            class_counts={c: per for c in INSPECTION_CLASSES},
            seed=seed,
        )
        (dest / "manifest.csv").unlink()
    if pool:
        scratch = dest.parent / f"{dest.name}.pool"
        make_inspection_dataset(scratch, n_images=pool, image_size=IMAGE_SIZE, seed=seed + 1000)
        dest.mkdir(parents=True, exist_ok=True)
        for png in scratch.glob("*/*.png"):
            png.rename(dest / f"pool-{png.name}")
        shutil.rmtree(scratch)
    return {"labeled": per * len(INSPECTION_CLASSES) if labeled else 0, "pool": pool}


def new_project(name: str, folder: Path | None, **settings):
    """A fresh project with the inspection classes, its folder imported in this process."""
    from loupe.datasets.services import import_job_create, import_job_run
    from loupe.projects.services import project_create
    from ml.synthetic import INSPECTION_CLASSES

    defaults = {"image_size": IMAGE_SIZE, "retrain_every_n_labels": 0, "train_epochs": 1}
    project = project_create(
        name=f"{name} {time.time_ns()}",
        created_by=None,
        classes=list(INSPECTION_CLASSES),
        **{**defaults, **settings},
    )
    if folder is not None:
        job = import_job_create(
            project=project, path=str(folder), holdout_fraction=0.25, enqueue=False
        )
        job = import_job_run(import_job_id=job.pk)
        if job.status != "succeeded":
            raise RuntimeError(f"import failed: {job.error}")
    return project


def loop_of(loop_id: int):
    from loupe.learning.models import LearningLoop

    return LearningLoop.objects.select_related("training_run", "scoring_run").get(pk=loop_id)


def loop_done(loop_id: int):
    from loupe.learning.models import ACTIVE_STATUSES

    loop = loop_of(loop_id)
    return loop if loop.status not in ACTIVE_STATUSES else None


def latest_loop(project):
    from loupe.learning.models import LearningLoop

    return LearningLoop.objects.filter(project=project).order_by("-created_at").first()


def seconds_after(back: float, moment) -> float | None:
    """Seconds from the monotonic instant `back` to the database timestamp `moment`."""
    if moment is None:
        return None
    return moment.timestamp() - (time.time() - (time.monotonic() - back))


def reason(error: str) -> str:
    """The cause of an error message, without what Loupe was doing: 'Label Studio
    unreachable (...)', 'OSError: [Errno 28] No space left on device'."""
    start = error.find("Label Studio ")
    return error[start:] if start > 0 else error


# --- checks -----------------------------------------------------------------------------------


def check_versions(project, row: Row) -> str:
    """Exactly one model version per succeeded training run, none for any other run."""
    from loupe.learning.models import ModelVersion, RunStatus, TrainingRun

    runs = list(TrainingRun.objects.filter(project=project))
    versions = list(ModelVersion.objects.filter(project=project))
    by_run: dict[int, int] = {}
    for v in versions:
        by_run[v.training_run_id] = by_run.get(v.training_run_id, 0) + 1
    for r in runs:
        want = 1 if r.status == RunStatus.SUCCEEDED else 0
        if by_run.get(r.pk, 0) != want:
            row.problems.append(f"run {r.pk} ({r.status}) has {by_run.get(r.pk, 0)} versions")
    numbers = [v.version for v in versions]
    if len(numbers) != len(set(numbers)):
        row.problems.append(f"version numbers repeat: {numbers}")
    for v in versions:
        try:
            import io

            import torch

            with v.weights.open("rb") as handle:
                torch.load(io.BytesIO(handle.read()), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            row.problems.append(f"weights of v{v.version} unreadable: {exc}")
    return f"{len(versions)} version(s) / {len(runs)} run(s)"


def check_scoring(project, loop, row: Row) -> str:
    """Every pool item scored exactly once by the loop's version; every chunk succeeded."""
    from loupe.datasets.models import Item, Split
    from loupe.learning.models import Prediction, RunStatus

    scoring = loop.scoring_run
    if scoring is None:
        row.problems.append("the loop has no scoring run")
        return ""
    pool = set(Item.objects.filter(project=project, split=Split.POOL).values_list("id", flat=True))
    scored = list(
        Prediction.objects.filter(model_version=scoring.model_version).values_list(
            "item_id", flat=True
        )
    )
    if len(scored) != len(set(scored)):
        row.problems.append(f"{len(scored) - len(set(scored))} item(s) scored twice")
    if set(scored) != pool:
        row.problems.append(f"{len(pool - set(scored))} pool item(s) never scored")
    bad = scoring.chunks.exclude(status=RunStatus.SUCCEEDED).count()
    if bad:
        statuses = list(scoring.chunks.exclude(status=RunStatus.SUCCEEDED).values_list("status"))
        row.problems.append(f"{bad} chunk(s) not succeeded: {statuses[:3]}")
    return f"{len(set(scored))}/{len(pool)} pool items scored once"


def check_labels(project, expected: int, row: Row) -> str:
    from loupe.labeling.models import GroundTruth

    n = GroundTruth.objects.filter(project=project).count()
    if n != expected:
        row.problems.append(f"{n} labels, expected {expected}")
    return f"{n}/{expected} labels"


def check_push(project, selection_round, ls: LabelStudio, row: Row) -> str:
    """Label Studio's tasks of the project == the round's picks, each item once."""
    from loupe.datasets.models import ItemState
    from loupe.learning.models import SelectionRound

    selection_round.refresh_from_db()
    project.refresh_from_db()
    picks = dict(selection_round.items.values_list("item_id", "ls_task_id"))
    if selection_round.status != SelectionRound.Status.PUSHED:
        row.problems.append(f"round {selection_round.number} still {selection_round.status}")
        return f"{len(picks)} picks, not pushed"
    tasks = ls.tasks(project.ls_project_id)
    items = [item for _, item in tasks]
    if len(items) != len(set(items)):
        row.problems.append(f"{len(items) - len(set(items))} duplicate task(s) in Label Studio")
    if set(items) != set(picks):
        row.problems.append(f"tasks {len(set(items))} != picks {len(picks)}")
    if {t: i for t, i in tasks} != {t: i for i, t in picks.items()}:
        row.problems.append("picks' task ids differ from Label Studio's")
    waiting = selection_round.items.filter(item__state=ItemState.IN_ANNOTATION).count()
    if waiting != len(picks):
        row.problems.append(f"{len(picks) - waiting} picked item(s) not in annotation")
    return f"{len(tasks)} tasks / {len(picks)} picks"


def check_loop(project, loop, ls: LabelStudio, row: Row, labels: int) -> str:
    from loupe.learning.models import RunStatus

    if loop.status != RunStatus.SUCCEEDED:
        row.problems.append(f"loop {loop.status}: {loop.error[:200]}")
        return check_versions(project, row)
    from loupe.learning.models import SelectionRound

    pushed = wait_for(
        lambda: SelectionRound.objects.filter(pk=loop.selection_round_id, status="pushed").first(),
        timeout=420,
        interval=1.0,
    )
    parts = [
        check_versions(project, row),
        check_scoring(project, loop, row),
        check_labels(project, labels, row),
        check_push(project, pushed or loop.selection_round, ls, row),
    ]
    return ", ".join(p for p in parts if p)


# --- the faults -------------------------------------------------------------------------------


class Context:
    def __init__(self, var_dir: Path, ls: LabelStudio, args):
        self.var_dir, self.ls, self.args = var_dir, ls, args
        self.workers: list[Worker] = []

    def worker(self) -> Worker:
        live = [w for w in self.workers if w.process.poll() is None]
        if live:
            return live[-1]
        worker = Worker(self.var_dir)
        self.workers.append(worker)
        return worker

    def folder(self, name: str, **kwargs) -> tuple[Path, dict]:
        dest = self.var_dir / "imports" / name
        return dest, make_folder(dest, **kwargs)


def fault_postgres(ctx: Context) -> Row:
    from loupe.learning.loop import loop_start
    from loupe.learning.models import TrainingRun

    row = Row(NAMES[1])
    folder, sizes = ctx.folder("pg", labeled=80, pool=300, seed=1)
    project = new_project("pg restart", folder, batch_size=20)
    ctx.worker()
    loop, _ = loop_start(project=project)

    def training_underway():
        run = TrainingRun.objects.get(pk=loop.training_run_id)
        return run.status == "running" and run.phase == "training" and run.progress > 0.3

    if not wait_for(training_underway, timeout=300, interval=0.1):
        row.exercised, row.happened = False, "training never got under way"
        return row
    version = postgres_version()
    started = time.monotonic()
    restart = run(["pg_ctlcluster", version, "main", "restart"], timeout=120)
    if restart.returncode != 0:
        raise RuntimeError(f"pg_ctlcluster restart failed: {restart.stderr}")
    while not postgres_up():
        time.sleep(0.2)
    back = time.monotonic()
    log(f"PostgreSQL {version} restarted in {back - started:.1f} s")
    done = wait_for(lambda: loop_done(loop.pk), timeout=600, interval=0.5)
    if done is None:
        row.problems.append("the loop did not finish within 600 s")
        done = loop_of(loop.pk)
    run_ = TrainingRun.objects.get(pk=loop.training_run_id)
    row.recover_s = seconds_after(back, run_.finished_at)
    row.happened = (
        f"down {back - started:.1f} s; the worker's next heartbeat failed and the run was left "
        f"running; runs_resume re-sent it once stale, attempt {run_.attempts} trained again; "
        f"loop {done.status}"
    )
    row.checked = check_loop(project, done, ctx.ls, row, sizes["labeled"])
    return row


def fault_redis(ctx: Context) -> Row:
    from loupe.learning.loop import loop_start
    from loupe.learning.models import LearningLoop, RunStatus, ScoringChunk, ScoringRun

    row = Row(NAMES[2])
    folder, sizes = ctx.folder("redis", labeled=80, pool=1500, seed=2)
    project = new_project("redis restart", folder, batch_size=20)
    ctx.worker()
    loop, _ = loop_start(project=project)

    def scoring_underway():
        current = LearningLoop.objects.get(pk=loop.pk)
        if not current.scoring_run_id:
            return None
        chunks = ScoringChunk.objects.filter(scoring_run_id=current.scoring_run_id)
        if chunks.filter(status=RunStatus.SUCCEEDED).exists():
            return chunks.filter(status=RunStatus.QUEUED).count()
        return None

    left = wait_for(scoring_underway, timeout=400, interval=0.05)
    if not left:
        row.exercised, row.happened = False, "scoring never seen under way"
        return row
    BEAT.paused = True
    started = time.monotonic()
    run(["redis-cli", "-p", "6379", "shutdown", "nosave"])
    time.sleep(5)
    started_again = run(REDIS_START)
    if started_again.returncode != 0:
        raise RuntimeError(f"redis-server did not start: {started_again.stderr}")
    while not redis_up():
        time.sleep(0.1)
    back = time.monotonic()
    BEAT.paused = False
    log(f"Redis down for {back - started:.1f} s with {left} chunk(s) queued")
    done = wait_for(lambda: loop_done(loop.pk), timeout=600, interval=0.5)
    if done is None:
        row.problems.append("the loop did not finish within 600 s")
        done = loop_of(loop.pk)
    scoring = ScoringRun.objects.get(pk=done.scoring_run_id)
    row.recover_s = seconds_after(back, done.finished_at)
    ended_during = (seconds_after(back, scoring.finished_at) or 0) < 0
    row.happened = (
        f"down {back - started:.0f} s with {left} of {scoring.chunks_total} chunks queued (queued "
        f"messages lost); the worker reconnected and went on taking chunks from the database"
        + (
            "; scoring ended while Redis was down, so sending the selection failed and "
            "runs_resume re-sent it once stale"
            if ended_during
            else ""
        )
        + f"; loop {done.status}"
    )
    row.checked = check_loop(project, done, ctx.ls, row, sizes["labeled"])
    return row


def fault_push(ctx: Context) -> Row:
    from loupe.learning.loop import loop_start
    from loupe.learning.models import SelectionRound

    row = Row(NAMES[3])
    folder, _ = ctx.folder("push", labeled=0, pool=1200, seed=3)
    project = new_project("ls push", folder, batch_size=1100)
    ctx.worker()
    loop, _ = loop_start(project=project)  # too few labels: a cold-start batch

    def tasks_arriving():
        project.refresh_from_db()
        if not project.ls_project_id:
            return None
        n = ctx.ls.task_count(project.ls_project_id)
        return n if n > 0 else None

    seen = wait_for(tasks_arriving, timeout=400, interval=0.02, beat=False)
    if not seen:
        row.exercised, row.happened = False, "no task seen arriving"
        return row
    ctx.ls.stop()
    stopped = time.monotonic()
    at_stop = ctx.ls.task_count(project.ls_project_id)
    selection_round = SelectionRound.objects.get(pk=loop_of(loop.pk).selection_round_id)
    failed = wait_for(
        lambda: SelectionRound.objects.filter(pk=selection_round.pk).exclude(push_error="").first(),
        timeout=60,
        beat=False,
    )
    error = reason(failed.push_error) if failed else "no error recorded"
    time.sleep(max(0.0, 5 - (time.monotonic() - stopped)))
    ctx.ls.start()
    back = time.monotonic()
    pushed = wait_for(
        lambda: SelectionRound.objects.filter(pk=selection_round.pk, status="pushed").first(),
        timeout=600,
        interval=0.5,
    )
    if pushed is None:
        row.problems.append("the round was not pushed within 600 s")
    else:
        row.recover_s = time.monotonic() - back
    selection_round.refresh_from_db()
    row.happened = (
        f"stopped once {at_stop} of {selection_round.items.count()} tasks existed, down "
        f'{back - stopped:.0f} s; the push failed ("{error}"), the round stayed a draft; the '
        f"task's retry found those tasks and created the rest (attempt "
        f"{selection_round.push_attempts})"
    )
    row.checked = check_push(project, selection_round, ctx.ls, row)
    return row


def fault_reconcile(ctx: Context) -> Row:
    from loupe import jobs
    from loupe.labeling.ls_payloads import choices_result
    from loupe.labeling.models import Annotation, GroundTruth, LabelStudioSync
    from loupe.learning.loop import loop_start
    from loupe.learning.models import SelectionRound
    from ml.synthetic import INSPECTION_CLASSES

    row = Row(NAMES[4])
    folder, _ = ctx.folder("reconcile", labeled=0, pool=1200, seed=4)
    project = new_project("ls reconcile", folder, batch_size=1100)
    ctx.worker()
    loop, _ = loop_start(project=project)
    pushed = wait_for(
        lambda: SelectionRound.objects.filter(project=project, status="pushed").first(),
        timeout=600,
        interval=0.5,
    )
    if pushed is None:
        row.exercised, row.happened = False, "the batch was never pushed"
        return row
    project.refresh_from_db()  # linked to Label Studio by the push
    client = ctx.ls.client()
    task_ids = sorted(pushed.items.values_list("ls_task_id", flat=True))
    before, after = task_ids[:600], task_ids[600:700]  # the last 400 stay open
    classes = list(INSPECTION_CLASSES)
    log(f"annotating {len(before)} tasks in Label Studio (webhooks go nowhere) ...")
    created = []
    for i, task_id in enumerate(before):
        created.append(
            client.annotations.create(id=task_id, result=choices_result([classes[i % 4]])).id
        )
    ctx.ls.mark()
    jobs.enqueue(jobs.RECONCILE_PROJECT, project_id=project.pk)

    def reconciling():
        state = LabelStudioSync.objects.filter(project=project).first()
        return state if state and state.reconcile_claimed_until else None

    if not wait_for(reconciling, timeout=120, interval=0.02, beat=False):
        row.exercised, row.happened = False, "the reconciliation was never seen running"
        return row
    # Stop it once the first page of the listing has been served: mid-listing.
    if not wait_for(
        lambda: ctx.ls.served("GET /api/tasks/?", "fields=all", "page=1&"),
        timeout=60,
        interval=0.02,
        beat=False,
    ):
        row.exercised, row.happened = False, "the listing was never seen under way"
        return row
    ctx.ls.stop()
    stopped = time.monotonic()
    released = wait_for(
        lambda: LabelStudioSync.objects.filter(
            project=project, reconcile_claimed_until__isnull=True
        ).first(),
        timeout=120,
        beat=False,
    )
    error = reason(released.last_error if released else "") or "no error recorded"
    applied_then = Annotation.objects.filter(project=project).count()
    time.sleep(max(0.0, 5 - (time.monotonic() - stopped)))
    ctx.ls.start()
    back = time.monotonic()
    # More work while Loupe hears nothing: new answers, and changed ones.
    for i, task_id in enumerate(after):
        client.annotations.create(id=task_id, result=choices_result([classes[(i + 1) % 4]]))
    for annotation_id in created[:10]:
        client.annotations.update(annotation_id, result=choices_result(["stain"]))
    expected = ctx.ls.annotations(project.ls_project_id)
    changed_at = time.monotonic()

    def caught_up():
        mine = dict(
            Annotation.objects.filter(project=project).values_list(
                "ls_annotation_id", "label_class__name"
            )
        )
        return set(mine) == set(expected) and all(
            mine[a] == (classes_[0] if classes_ else None) for a, (_, classes_) in expected.items()
        )

    if wait_for(caught_up, timeout=300, interval=1.0) is None:
        row.problems.append("Loupe's annotations did not match Label Studio's within 300 s")
    else:
        row.recover_s = time.monotonic() - changed_at
    mine = list(
        Annotation.objects.filter(project=project).values_list("ls_annotation_id", flat=True)
    )
    if len(mine) != len(set(mine)):
        row.problems.append("an annotation is in Loupe twice")
    labeled = GroundTruth.objects.filter(project=project).count()
    if labeled != len(before) + len(after):
        row.problems.append(f"{labeled} labels for {len(before) + len(after)} annotated items")
    row.happened = (
        f"stopped after page 1 of a pass listing {len(before)} new annotations "
        f"({applied_then} in Loupe from an earlier pass), down {back - stopped:.0f} s; the "
        f'pass failed ("{error}"), cursor kept; then {len(after)} new and 10 changed '
        f"answers; the next pass pulled all"
    )
    row.checked = (
        f"{len(set(mine))} annotations in Loupe / {len(expected)} in Label Studio, {labeled} labels"
    )
    return row


def fault_disk(ctx: Context) -> Row:
    return disk_full(ctx, NAMES[5], "models", seed=5)


def fault_disk_scoring(ctx: Context) -> Row:
    return disk_full(ctx, NAMES[7], "scoring", seed=7)


def disk_full(ctx: Context, name: str, media_dir: str, *, seed: int) -> Row:
    """A 64 KiB file system over the media folder `media_dir` (models/: weights, scoring/:
    chunk artifacts); once the loop failed, it grows to 64 MiB, keeping what was written."""
    from django.conf import settings

    from loupe.learning.loop import loop_start
    from loupe.learning.models import Prediction

    row = Row(name)
    folder, sizes = ctx.folder(f"disk-{media_dir}", labeled=80, pool=300, seed=seed)
    project = new_project(f"disk full {media_dir}", folder, batch_size=20)
    target = Path(settings.MEDIA_ROOT) / media_dir
    target.mkdir(parents=True, exist_ok=True)
    mounted = run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)])
    if mounted.returncode != 0:
        row.exercised = False
        row.happened = f"mount refused ({mounted.stderr.strip()})"
        return row
    try:
        ctx.worker()
        loop, _ = loop_start(project=project)
        first = wait_for(lambda: loop_done(loop.pk), timeout=400, interval=0.5, beat=False)
        if first is None:
            row.problems.append("the loop was still running 400 s after the disk filled")
            first = loop_of(loop.pk)
        failed = first.scoring_run if media_dir == "scoring" else first.training_run
        what = "scoring" if media_dir == "scoring" else "training"
        chunks = ""
        if media_dir == "scoring":
            done = failed.chunks.filter(status="succeeded").count()
            chunks = f" after {done}/{failed.chunks_total} chunks"
        leftovers = sorted(
            p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()
        )
        partial = [n for n in leftovers if n.endswith(".part")]
        # Space comes back: the same file system grows (what was written stays).
        run(["mount", "-o", "remount,size=64m", str(target)], check=True)
        freed = time.monotonic()
        # Beat does not retry it: the project's labels are imported ones, not new expert
        # labels. Someone presses retrain, as the loop's error invites.
        BEAT.tick(force=True)
        if latest_loop(project).pk == loop.pk:
            loop_start(project=project)
        again = wait_for(
            lambda: (latest := latest_loop(project)).pk != loop.pk and loop_done(latest.pk),
            timeout=600,
            interval=0.5,
        )
        if again is None:
            row.problems.append("no loop finished after the space came back")
            row.checked = check_versions(project, row)
            return row
        redone = again.scoring_run if media_dir == "scoring" else again.training_run
        row.recover_s = seconds_after(freed, redone.finished_at if redone else None)
        row.happened = (
            f'{what} {failed.status}{chunks}, loop {first.status}: "{reason(first.error)}", '
            f"{len(partial)} partial file(s); space back, a retrain's loop {again.status}"
        )
        row.checked = check_loop(project, again, ctx.ls, row, sizes["labeled"])
        if first.status != "failed" or failed.status != "failed":
            row.problems.append(f"the full disk left the loop {first.status}")
        if partial:
            row.problems.append(f"partial files left: {partial[:3]}")
        if media_dir == "scoring":
            scored = list(
                Prediction.objects.filter(scoring_run=failed).values_list("item_id", flat=True)
            )
            if len(scored) != len(set(scored)):
                row.problems.append("the failed scoring wrote an item twice")
    finally:
        for _ in range(20):
            if run(["umount", str(target)]).returncode == 0:
                break
            time.sleep(0.5)
    return row


def fault_import(ctx: Context) -> Row:
    from loupe.datasets.models import ImportJob, ImportRejection, Item
    from loupe.datasets.services import import_job_create
    from loupe.labeling.models import GroundTruth

    row = Row(NAMES[6])
    n = ctx.args.import_files
    folder, sizes = ctx.folder("import", labeled=n, pool=0, seed=6)
    files = sum(1 for _ in folder.glob("*/*.png"))
    project = new_project("killed import", None)
    worker = ctx.worker()
    job = import_job_create(project=project, path=str(folder))

    def halfway():
        current = ImportJob.objects.get(pk=job.pk)
        return current if current.status == "running" and current.processed >= n // 3 else None

    at = wait_for(halfway, timeout=300, interval=0.05, beat=False)
    if at is None:
        row.exercised, row.happened = False, "the import was never seen halfway"
        return row
    worker.kill()
    at = ImportJob.objects.get(pk=job.pk)
    killed_items = Item.objects.filter(project=project).count()
    ctx.worker()
    back = time.monotonic()
    done = wait_for(
        lambda: ImportJob.objects.filter(pk=job.pk, status__in=["succeeded", "failed"]).first(),
        timeout=240,
        interval=0.5,
    )
    job.refresh_from_db()
    if done is None:
        row.problems.append(f"the import stayed {job.status} for 240 s after a new worker started")
    else:
        row.recover_s = time.monotonic() - back
    items = list(Item.objects.filter(project=project).values_list("sha256", flat=True))
    labels = GroundTruth.objects.filter(project=project).count()
    rejections = ImportRejection.objects.filter(job=job).count()
    if len(items) != files or len(set(items)) != len(items):
        row.problems.append(f"{len(items)} items ({len(set(items))} distinct) for {files} files")
    if labels != files:
        row.problems.append(f"{labels} labels for {files} labeled files")
    counters = (job.total, job.processed, job.imported, job.labeled, job.duplicates)
    if counters != (files, files, files, files, 0) or rejections:
        row.problems.append(
            "the job reports total/processed/imported/labeled/duplicates "
            f"{'/'.join(map(str, counters))}, {rejections} rejections"
        )
    row.happened = (
        f"killed at {at.processed}/{at.total} files ({killed_items} items committed), the job "
        f"left running"
        + (
            f"; runs_resume re-sent it once stale, a new worker read the source again: {job.status}"
            if done
            else "; nothing re-sent it"
        )
    )
    row.checked = f"{len(set(items))} items / {files} files, {labels} labels"
    return row


FAULTS = {
    1: fault_postgres,
    2: fault_redis,
    3: fault_push,
    4: fault_reconcile,
    5: fault_disk,
    6: fault_import,
    7: fault_disk_scoring,
}
NAMES = {
    1: "PostgreSQL restarted mid-training",
    2: "Redis restarted mid-scoring",
    3: "Label Studio stopped mid-push",
    4: "Label Studio stopped mid-reconcile",
    5: "Disk full while writing a model artifact",
    6: "Worker killed (SIGKILL) during an import",
    7: "Disk full while writing a scoring artifact",
}
SHARED_SERVICES = {1, 2}


def print_table(rows: list[Row]) -> None:
    print("\n| fault | what happened | recover s | checked | verdict |")
    print("|---|---|---|---|---|")
    for r in rows:
        recover = f"{r.recover_s:.0f}" if r.recover_s is not None else "-"
        print(f"| {r.fault} | {r.happened} | {recover} | {r.checked} | {r.verdict} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="3,4,5,7,6,1,2", help="faults to run, in this order")
    parser.add_argument("--import-files", type=int, default=3000, help="files of fault 6")
    parser.add_argument("--quiet-wait", type=float, default=600, help="s to wait for pytest")
    parser.add_argument("--keep", action="store_true", help="keep the database and var dir")
    args = parser.parse_args()
    order = [int(f) for f in args.only.split(",") if f.strip()]
    if not postgres_up() or not redis_up():
        raise SystemExit("PostgreSQL and Redis must answer on 127.0.0.1 before the run")

    var_dir = ROOT / "var" / f"faults-{time.time_ns()}"
    (var_dir / "imports").mkdir(parents=True)
    rows: list[Row] = []
    ls = ctx = None
    try:
        database_recreate()
        redis_flush()
        log("starting Label Studio ...")
        ls = LabelStudio(var_dir / "labelstudio")
        setup(var_dir, ls)
        ctx = Context(var_dir, ls, args)
        for number in order:
            if number in SHARED_SERVICES and not wait_quiet(args.quiet_wait):
                rows.append(Row(NAMES[number], "skipped: others' tests ran", exercised=False))
                continue
            log(f"fault {number}: {FAULTS[number].__name__} ...")
            started = time.monotonic()
            try:
                row = FAULTS[number](ctx)
            except Exception as exc:  # noqa: BLE001 (the table says what went wrong)
                import traceback

                traceback.print_exc()
                row = Row(NAMES[number], problems=[f"{type(exc).__name__}: {exc}"])
            rows.append(row)
            log(f"  {row.verdict} in {time.monotonic() - started:.0f} s: {row.happened}")
            BEAT.paused = False
    finally:
        if not redis_up():
            run(REDIS_START)
        if not postgres_up():
            run(["pg_ctlcluster", postgres_version(), "main", "start"])
        for worker in ctx.workers if ctx else []:
            worker.stop()
        if ls is not None:
            ls.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        redis_flush()
        if not args.keep:
            database_drop()
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            log(f"kept {var_dir} and database {DB}")
        log(f"pg_isready: {postgres_up()}, redis ping: {redis_up()}")
    print_table(rows)


if __name__ == "__main__":
    main()
