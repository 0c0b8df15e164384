"""Round latency: from "a batch labeled" to "next batch selected" on a ~2,000-image pool, with
training from scratch every round (cold) beside fine-tuning the previous version (warm
start), and the balanced accuracy of every version beside its time: a faster round must not
cost accuracy.

    .venv/bin/python benchmarks/round_latency.py [--n 2200] [--rounds 3] [--warm-steps N]
        [--full-retrain-every K] [--keep]

The data is the demo's (``loupe.projects.demo``: generated, class-imbalanced inspection
images at 64 px, 10% of every class as labeled seed, the rest the pool), generated once
under var/bench-round-cache/<n>, with 600 more images of the same kind as a test set no
project ever sees. Two projects with the default settings import it into a temporary
LOUPE_VAR_DIR under var/ (SQLite, the filesystem broker); one real Celery worker with its
default torch threads serves both. Each project trains its first version from scratch
(not measured). Then, for each round, in turn for each project, experts label the selected
batch (every pick answered with its true class, as ``benchmarks/loop_latency.py`` does);
the last label starts the loop through the labeling trigger, as in production, and the
script waits until the next batch is selected. The cold project has LOUPE_WARM_START_STEPS
0, so it retrains from scratch; the warm one fine-tunes with the default settings (or
``--warm-steps``). The rounds of the two projects alternate, so a burst of load on a shared
machine hits both alike.

Accuracy: the balanced accuracy on the project's fixed holdout (with its bootstrap interval
where the version has one; the two projects' holdouts differ after the first batch, since
each labels its own picks), and on the unseen test set, which is the same for both. No
assert on speed: the table is the result. About 4-5 minutes on 2 busy CPU cores."""

import argparse
import csv
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from loop_latency import Workers, _interrupt, _table, setup_django  # noqa: E402

TEST_IMAGES = 600
TARGET_S = 30.0


def prepare(cache: Path, n: int) -> None:
    """The demo's images and manifests, and an unseen test set, generated once."""
    if (cache / "ready").exists():
        return
    from loupe.projects.demo import demo_data_generate
    from ml.synthetic import make_inspection_dataset

    shutil.rmtree(cache, ignore_errors=True)
    demo_data_generate(dataset="inspection", root=cache, n_images=n, seed=0)
    make_inspection_dataset(cache / "test", n_images=TEST_IMAGES, image_size=64, seed=1)
    (cache / "ready").touch()


def answers_of(cache: Path) -> dict[str, str]:
    """The true class of every pool file, by file name (the class folder of its path)."""
    with (cache / "pool.csv").open(newline="", encoding="utf-8") as handle:
        return {Path(r["path"]).name: Path(r["path"]).parent.name for r in csv.DictReader(handle)}


def test_set(cache: Path):
    import numpy as np
    import torch
    from PIL import Image

    with (cache / "test" / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pixels = [np.asarray(Image.open(cache / "test" / r["path"]).convert("RGB")) for r in rows]
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255.0
    return x, [r["label"] for r in rows]


def test_balanced_accuracy(version, x, labels) -> float:
    """The version's balanced accuracy on the unseen test set (its image size is 64 px)."""
    import numpy as np

    from loupe.learning.scoring import version_model
    from ml.metrics import balanced_accuracy
    from ml.scoring import score

    names = list(version.class_names)
    y = np.array([names.index(label) for label in labels])
    probs = score(version_model(model_version=version), x).probs
    return balanced_accuracy(y, probs.argmax(1), len(names))


def create_project(name: str, cache: Path):
    from loupe.datasets.services import import_job_create, import_job_run
    from loupe.projects.services import project_create

    classes = sorted(p.name for p in (cache / "inspection").iterdir() if p.is_dir())
    project = project_create(name=name, created_by=None, classes=classes)  # the defaults
    for manifest, tag in (("labeled.csv", "seed-labels"), ("pool.csv", "line-a")):
        job = import_job_create(
            project=project, path=str(cache / manifest), source_tag=tag, enqueue=False
        )
        job = import_job_run(import_job_id=job.pk)
        if job.status != "succeeded":
            raise RuntimeError(f"import failed: {job.error}")
    return project


def wait_for(project, after_id: int, timeout: float, what: str):
    """The first loop of the project with an id above `after_id`, once it has ended."""
    from loupe.learning.models import ACTIVE_STATUSES, LearningLoop

    deadline = time.monotonic() + timeout
    while True:
        loop = (
            LearningLoop.objects.filter(project=project, pk__gt=after_id)
            .select_related("training_run", "selection_round")
            .order_by("pk")
            .first()
        )
        if loop is not None and loop.status not in ACTIVE_STATUSES:
            if loop.status != "succeeded":
                raise RuntimeError(f"{what}: the loop ended {loop.status}: {loop.error}")
            return loop
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: no batch within {timeout:.0f} s")
        time.sleep(0.1)


def label_batch_and_wait(project, answers: dict, timeout: float) -> tuple:
    """Experts answer every pick of the latest batch; the last answer triggers the loop.
    Returns (the loop that selected the next batch, seconds from the last label to it)."""
    from loupe.datasets.models import Item, ItemState
    from loupe.labeling.services import ground_truth_review
    from loupe.learning.loop import loop_start
    from loupe.learning.models import LearningLoop, SelectionRound, Trigger

    last_loop = LearningLoop.objects.filter(project=project).order_by("-pk").first()
    batch = SelectionRound.objects.filter(project=project).order_by("-number").first()
    items = list(
        Item.objects.filter(
            selections__selection_round=batch, state__in=[ItemState.QUEUED]
        ).select_related("project")
    )
    if not items:
        raise RuntimeError("the latest batch has nothing left to label")
    for item in items[:-1]:
        ground_truth_review(item=item, label_class_name=answers[Path(item.original_name).name])
    labeled_at = time.time()
    last = items[-1]
    ground_truth_review(item=last, label_class_name=answers[Path(last.original_name).name])
    after = last_loop.pk if last_loop else 0
    if not LearningLoop.objects.filter(project=project, pk__gt=after).exists():
        loop_start(project=project, trigger=Trigger.LABELS)  # no trigger fired: start it
    loop = wait_for(project, after, timeout, project.name)
    return loop, loop.finished_at.timestamp() - labeled_at


def describe(loop, seconds: float, x_test, test_labels) -> dict:
    version = loop.training_run.model_version
    config = loop.training_run.config
    metrics = version.metrics or {}
    interval = (metrics.get("intervals") or {}).get("balanced_accuracy")
    holdout = metrics.get("balanced_accuracy")
    holdout_text = "-" if holdout is None else f"{holdout:.3f}"
    if interval:
        holdout_text += f" [{interval[0]:.2f}, {interval[1]:.2f}]"
    if "warm_start_from" in config:
        start = f"warm from v{config['warm_start_from']}"
    else:
        start = f"scratch ({config.get('from_scratch', '?')})"
    return {
        "version": version.version,
        "start": start,
        "seconds": seconds,
        "train": loop.timings.get("train", 0.0),
        "score": loop.timings.get("score", 0.0),
        "select": loop.timings.get("select", 0.0),
        "steps": int(loop.training_run.loss_curve[-1][0]) if loop.training_run.loss_curve else 0,
        "labels": loop.training_run.labels_used,
        "holdout_n": loop.training_run.holdout_size,
        "holdout": holdout,
        "holdout_text": holdout_text,
        "test": test_balanced_accuracy(version, x_test, test_labels),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2200, help="demo images (10%% become the seed)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per project")
    parser.add_argument("--warm-steps", type=int, default=0, help="LOUPE_WARM_START_STEPS")
    parser.add_argument("--full-retrain-every", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per loop")
    parser.add_argument("--keep", action="store_true", help="keep the var dir for inspection")
    args = parser.parse_args()

    cache = ROOT / "var" / "bench-round-cache" / str(args.n)
    var_dir = Path(tempfile.mkdtemp(prefix="bench-round-", dir=ROOT / "var"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.django.local",
            "DJANGO_DEBUG": "false",
            "LOUPE_VAR_DIR": str(var_dir),
            "LOUPE_MEDIA_ROOT": str(var_dir / "media"),
            "LOUPE_IMPORT_ROOTS": str(cache),
            "LOUPE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT)]),
        }
    )
    if args.warm_steps:
        os.environ["LOUPE_WARM_START_STEPS"] = str(args.warm_steps)
    if args.full_retrain_every:
        os.environ["LOUPE_FULL_RETRAIN_EVERY"] = str(args.full_retrain_every)
    signal.signal(signal.SIGTERM, _interrupt)
    started_all = time.perf_counter()
    workers = None
    loads = [os.getloadavg()[0]]
    try:
        setup_django()
        print(f"preparing {args.n} demo images + {TEST_IMAGES} test images in {cache} ...")
        prepare(cache, args.n)
        from django.conf import settings
        from django.core.management import call_command
        from django.test import override_settings

        from loupe.datasets.models import Item, Split
        from loupe.learning.loop import loop_start

        call_command("migrate", verbosity=0)
        answers = answers_of(cache)
        x_test, test_labels = test_set(cache)
        stamp = time.time_ns()
        projects = {
            "cold": create_project(f"round cold {stamp}", cache),
            "warm": create_project(f"round warm {stamp}", cache),
        }
        # The cold project never warm-starts; the labeling trigger creates the training run
        # in this process, so its settings decide.
        modes = {
            "cold": override_settings(LOUPE_WARM_START_STEPS=0),
            "warm": override_settings(),
        }
        pool = Item.objects.filter(project=projects["cold"], split=Split.POOL).count()
        workers = Workers(1, env={**os.environ, "LOUPE_LOG_LEVEL": "INFO"}, log_dir=var_dir)
        workers.wait_ready()
        threads = _worker_threads()
        print(
            f"{pool} pool items, 1 worker ({threads} torch threads); warm start "
            f"{settings.LOUPE_WARM_START_STEPS} steps, a full retrain every "
            f"{settings.LOUPE_FULL_RETRAIN_EVERY} versions",
            flush=True,
        )
        rows = []
        try:
            for name, project in projects.items():
                with modes[name]:
                    begin = time.time()
                    loop, _ = loop_start(project=project)
                    loop = wait_for(project, loop.pk - 1, args.timeout, name)
                row = describe(loop, loop.finished_at.timestamp() - begin, x_test, test_labels)
                print(f"  {name}: first version in {row['seconds']:.1f} s", flush=True)
                rows.append({"round": 0, "mode": name, **row})
            for number in range(1, args.rounds + 1):
                for name, project in projects.items():
                    with modes[name]:
                        loop, seconds = label_batch_and_wait(project, answers, args.timeout)
                    row = describe(loop, seconds, x_test, test_labels)
                    print(
                        f"  round {number} {name}: next batch {seconds:.1f} s after the last "
                        f"label ({row['start']}, train {row['train']:.1f} s), test balanced "
                        f"accuracy {row['test']:.3f}",
                        flush=True,
                    )
                    rows.append({"round": number, "mode": name, **row})
        except Exception:
            print(workers.tail(), file=sys.stderr)
            raise
        loads.append(os.getloadavg()[0])
        report(rows, args, pool, threads, loads, time.perf_counter() - started_all)
    finally:
        if workers is not None:
            workers.stop()
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


def _worker_threads() -> int:
    """The torch threads the worker (one process) chooses by default on this machine."""
    from workers.startup import torch_threads

    return torch_threads(1)


def report(rows: list[dict], args, pool: int, threads: int, loads: list, total: float) -> None:
    print(
        f"\nRound latency, demo inspection set: {pool} pool images at 64 px, project defaults "
        f"(batch 50, 15 epochs, small CNN); 1 worker, {threads} torch thread(s), SQLite, "
        f"filesystem broker, {os.cpu_count()} cores; load average {loads[0]:.1f} before, "
        f"{loads[-1]:.1f} after; {total:.0f} s in all\n"
    )
    _table(
        ["round", "training", "version", "label -> next batch s", "train s", "score s"]
        + ["select s", "steps", "labels", "holdout n", "holdout bal. acc [95% CI]"]
        + ["test bal. acc"],
        [
            [str(r["round"]) if r["round"] else "first", r["start"], f"v{r['version']}"]
            + [f"{r[k]:.1f}" for k in ("seconds", "train", "score", "select")]
            + [str(r["steps"]), str(r["labels"]), str(r["holdout_n"]), r["holdout_text"]]
            + [f"{r['test']:.3f}"]
            for r in rows
        ],
    )
    measured = [r for r in rows if r["round"]]
    print()
    summary = []
    for mode in ("cold", "warm"):
        mine = [r for r in measured if r["mode"] == mode]
        if not mine:
            continue
        mean = {k: sum(r[k] for r in mine) / len(mine) for k in ("seconds", "train", "test")}
        holdouts = [r["holdout"] for r in mine if r["holdout"] is not None]
        holdout = f"{sum(holdouts) / len(holdouts):.3f}" if holdouts else "-"
        summary.append(
            [mode, str(len(mine)), f"{mean['seconds']:.1f}", f"{mean['train']:.1f}", holdout]
            + [f"{mean['test']:.3f}"]
        )
    _table(
        ["mode", "rounds", "mean label -> next batch s", "mean train s"]
        + ["mean holdout bal. acc", "mean test bal. acc"],
        summary,
    )
    print(
        f"\n(label -> next batch: from the last label of a batch to the next batch selected, "
        f"target < {TARGET_S:.0f} s; Label Studio's push is not included. test: {TEST_IMAGES} "
        "generated images no project sees, the same for every version. first: each project's "
        "first version from the seed labels, from scratch in both, timed from loop_start.)"
    )


if __name__ == "__main__":
    main()
