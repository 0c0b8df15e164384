"""Loop latency: from "batch labeled" to "next batch selected" on a pool of small images,
with 1 and 2 real Celery worker processes, broken down into train / score / select, and the
workers' scoring throughput beside ``ml.scoring.score`` on the same model and tensors.

    .venv/bin/python benchmarks/loop_latency.py [--n 50000] [--workers 1,2]
        [--database-url postgres://...] [--broker-url redis://...] [--keep]
        [--sqlite-immediate]   # SQLite transactions take the write lock at BEGIN
        [--threads T] [--env OMP_WAIT_POLICY=PASSIVE]   # knobs for the workers

The pool (N unlabeled 32x32 PNGs plus a labeled seed of 400 inspection images) is generated
once and cached under var/bench-loop-cache/<n>. Each run imports it into a fresh project in
a temporary LOUPE_VAR_DIR under var/ (SQLite and the filesystem broker unless told
otherwise). For each worker count, the script labels the last selected batch (as experts
would), calls ``loop_start`` as the label trigger does, and waits until the loop has
selected the next batch, twice:

* cold cache: a fresh pixel cache, so scoring decodes every image of the pool (and keeps
  its pixels): the first loop of a project, or the first after a change of image size;
* warm cache: the next loop on the same workers, as every later loop of a project runs:
  the pool is scored again by the new model version, reading the decoded pixels back.

Then it measures ``ml.scoring.score`` and the worker's other scoring costs (decoding, the
cache read, prediction writes) on a sample of the same pool in child processes. Worker
processes are stopped on exit, Ctrl-C or errors. Targets (2 CPU cores): end to end < 60 s,
worker scoring >= 80% of the ml scoring throughput with a warm cache (the ratio of the cold
pass is printed too). No assert on speed: the tables are the result. On a shared machine
the ml figure is measured minutes after the loop, so its ratio moves with the machine's
load; the worker CPU seconds move less."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED_LABELS = 400  # labeled seed images; a quarter lands in the holdout
POOL_BASES = 2000  # distinct generated images the pool is varied from
IMAGE_SIZE = 32
E2E_TARGET_S = 60.0
RATIO_TARGET = 0.80
WORKER_ARGS = ["-m", "celery", "-A", "config.celery", "worker", "-Q", "default,gpu"]
WORKER_ARGS += ["--concurrency", "1", "--loglevel", "INFO", "--without-gossip"]
WORKER_ARGS += ["--without-mingle", "--without-heartbeat"]


# --- the cached image set ---------------------------------------------------------------------


def generate(cache: Path, n: int) -> None:
    """cache/images: class folders with the labeled seed, and N unlabeled pool PNGs at the top;
    cache/answers.json: the true class of each pool file, used to label selected batches.
    Pool images are dihedral variants of generated inspection images with a little pixel
    noise: realistic content, unique files, ~20x faster than generating each one."""
    import numpy as np
    from PIL import Image

    from ml.synthetic import make_inspection_dataset

    partial = cache.with_name(cache.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    base = partial / "base"
    info = make_inspection_dataset(
        base, n_images=SEED_LABELS + min(n, POOL_BASES), image_size=IMAGE_SIZE, seed=0
    )
    rows = sorted(
        (int(p.stem.rsplit("_", 1)[1]), p.parent.name, p)
        for c in info["classes"]
        for p in (base / c).glob("*.png")
    )
    images = partial / "images"
    for _, label, path in rows[:SEED_LABELS]:
        (images / label).mkdir(parents=True, exist_ok=True)
        path.rename(images / label / path.name)
    bases = [
        (label, np.asarray(Image.open(path).convert("RGB")))
        for _, label, path in rows[SEED_LABELS:]
    ]
    rng = np.random.default_rng(1)
    answers = {}
    for i in range(n):
        label, pixels = bases[i % len(bases)]
        variant = (i // len(bases)) % 8
        pixels = np.rot90(pixels, k=variant % 4)
        pixels = pixels[:, ::-1] if variant >= 4 else pixels
        noise = rng.integers(-3, 4, size=pixels.shape, dtype=np.int16)
        pixels = np.clip(pixels.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        name = f"pool_{i:06d}.png"
        Image.fromarray(pixels, mode="RGB").save(images / name)
        answers[name] = label
    (partial / "answers.json").write_text(json.dumps(answers))
    shutil.rmtree(base)
    partial.rename(cache)


# --- worker processes -------------------------------------------------------------------------


class Workers:
    """`count` real `celery worker` processes (one task at a time each), stopped by stop()."""

    def __init__(self, count: int, *, env: dict, log_dir: Path, tag: str = ""):
        self.processes, self.logs = [], []
        for i in range(count):
            log = log_dir / f"worker-{count}w{'-' + tag if tag else ''}-{i}.log"
            self.logs.append(log)
            with log.open("wb") as handle:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, *WORKER_ARGS, "-n", f"bench{i}@%h"],
                        cwd=ROOT,
                        env=env,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # Ctrl-C reaches us, and we stop them
                    )
                )

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        for process, log in zip(self.processes, self.logs, strict=True):
            while " ready." not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{self.tail()}")
                time.sleep(0.5)

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


# --- the measured loop ------------------------------------------------------------------------


def label_last_batch(project, answers: dict) -> int:
    """Experts label the latest selected batch (a cold-start batch before the first loop)."""
    from loupe.datasets.models import Item, ItemState
    from loupe.labeling.services import ground_truth_review
    from loupe.learning.models import SelectionRound
    from loupe.learning.selection import selection_round_create

    last = SelectionRound.objects.filter(project=project).order_by("-number").first()
    if last is None:
        last = selection_round_create(project=project)
    items = Item.objects.filter(selections__selection_round=last, state=ItemState.QUEUED)
    count = 0
    for item in items.select_related("project"):
        ground_truth_review(item=item, label_class_name=answers[item.original_name])
        count += 1
    return count


def session_cpu_seconds(sessions: set[int]) -> float:
    """CPU time (user + system) of every live process in these sessions: a worker and its
    pool child. Less sensitive than wall time to what else the machine runs."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[3]) in sessions:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_loop(project, timeout: float, sessions: set[int]) -> dict:
    """loop_start as the label trigger calls it, then wait for "next batch selected"."""
    from django.utils import timezone

    from loupe.learning.loop import loop_start
    from loupe.learning.models import ACTIVE_STATUSES, LearningLoop, Trigger

    cpu = session_cpu_seconds(sessions)
    ready = timezone.now()
    # The batch's last label already started the loop (a finished batch is a trigger); its
    # message waited for the workers started since. The clock runs from now either way.
    loop, _ = loop_start(project=project, trigger=Trigger.LABELS)
    deadline = time.monotonic() + timeout
    step_cpu = {}  # the workers' CPU seconds when each step was first seen
    while True:
        loop = LearningLoop.objects.select_related("training_run", "scoring_run").get(pk=loop.pk)
        if loop.status not in ACTIVE_STATUSES:
            break
        if loop.step not in step_cpu:
            step_cpu[loop.step] = session_cpu_seconds(sessions)
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the loop did not finish within {timeout:.0f} s (phase {loop.phase})"
            )
        time.sleep(0.2)
    if loop.status != "succeeded":
        raise RuntimeError(f"the loop ended {loop.status}: {loop.error}")
    now_cpu = session_cpu_seconds(sessions)
    score_cpu = step_cpu.get(LearningLoop.Step.SELECT, now_cpu) - step_cpu.get(
        LearningLoop.Step.SCORE, now_cpu
    )
    cpu = now_cpu - cpu
    training, scoring = loop.training_run, loop.scoring_run
    version = training.model_version
    chunks = list(scoring.chunks.values_list("seconds", flat=True))
    score_wall = (scoring.finished_at - scoring.started_at).total_seconds()
    return {
        "e2e": (loop.finished_at - max(loop.started_at, ready)).total_seconds(),
        "train": loop.timings.get("train", 0.0),
        "fit": version.train_seconds or 0.0,
        "labels": training.labels_used,
        "score": loop.timings.get("score", score_wall),
        "select": loop.timings.get("select", 0.0),
        "scored": scoring.scored_items,
        "score_wall": score_wall,
        "chunks": len(chunks),
        "chunk_seconds": sum(chunks),
        "worker_rate": scoring.scored_items / max(score_wall, 1e-9),
        "worker_cpu_us": score_cpu / max(1, scoring.scored_items) * 1e6,
        "version": version.pk,
        "cpu": cpu,
    }


# --- the ml baseline and the worker's scoring costs, in a child process -------------------------


def child_profile(args) -> dict:
    """ml.scoring.score on decoded pool tensors (the ml benchmark's figure), and what the
    worker's chunk adds around it: decoding, building and writing predictions, the artifact."""

    import numpy as np
    import torch
    from django.conf import settings

    from loupe.datasets.models import Item, Split
    from loupe.learning.data import item_tensors
    from loupe.learning.models import ModelVersion
    from loupe.learning.scoring import version_model
    from ml import artifacts
    from ml.artifacts import ItemArrays
    from ml.scoring import score

    torch.set_num_threads(args.threads)
    version = ModelVersion.objects.get(pk=args.version)
    model = version_model(model_version=version)
    rows = list(
        Item.objects.filter(project=version.project, split=Split.POOL)
        .order_by("id")
        .values_list("id", "file", "sha256")[: args.sample]
    )
    files, keys = [r[1] for r in rows], [r[2] for r in rows]
    started = time.perf_counter()
    x = item_tensors(files, image_size=version.image_size)
    decode = time.perf_counter() - started
    item_tensors(files, image_size=version.image_size, cache_keys=keys)  # cached by the loops
    started = time.perf_counter()
    cached = item_tensors(files, image_size=version.image_size, cache_keys=keys)
    cache_read = time.perf_counter() - started
    if not torch.equal(cached, x):
        raise RuntimeError("the pixel cache gave other pixels than decoding")
    batch = settings.LOUPE_SCORING_BATCH_SIZE
    score(model, x[: 2 * batch], batch_size=batch)  # warm-up
    timings = [_timed(lambda: score(model, x, batch_size=batch)) for _ in range(3)]
    best, best_cpu = min(timings)
    output = score(model, x[: args.chunk_size], batch_size=batch)
    result = {
        "ml_rate": len(x) / best,
        "decode_us": decode / len(x) * 1e6,
        "cache_us": cache_read / len(x) * 1e6,
        "score_us": best / len(x) * 1e6,
        "ml_cpu_us": best_cpu / len(x) * 1e6,
    }
    if args.index == 0:  # one writer: SQLite lets only one transaction write at a time
        write = _prediction_write_seconds(version, rows[: args.chunk_size], output.probs)
        started = time.perf_counter()
        ids = np.array([r[0] for r in rows[: args.chunk_size]])
        artifacts.save(ItemArrays(item_ids=ids, probs=output.probs, embeddings=output.embeddings))
        artifact = time.perf_counter() - started
        result["write_us"] = write / len(output.probs) * 1e6
        result["artifact_us"] = artifact / len(output.probs) * 1e6
    return result


def _timed(fn) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of the process) of fn()."""
    started, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - started, time.process_time() - cpu


def _prediction_write_seconds(version, rows, probs) -> float:
    """The worker's prediction rows and insert for one chunk, rolled back afterwards (a
    throwaway version, so the unique (item, version) pair does not skip the inserts)."""
    import numpy as np
    from django.db import transaction

    from loupe.learning.models import ModelVersion, ScoringRun, TrainingRun
    from loupe.learning.scoring import _predictions_insert

    with transaction.atomic():
        fresh = ModelVersion.objects.get(pk=version.pk)
        fresh.pk, fresh.version = None, 10**6
        fresh.training_run = TrainingRun.objects.create(project=version.project, config={})
        fresh.save()
        run = ScoringRun.objects.create(project=version.project, model_version=fresh)
        started = time.perf_counter()
        _predictions_insert(
            version=fresh,
            run=run,
            item_ids=np.array([r[0] for r in rows], dtype=np.int64),
            probs=probs,
        )
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def run_profiles(version: int, args, threads: int, count: int) -> dict:
    """`count` profile children at once, as `count` workers share the cores: the ml rate is
    their sum, the per-item costs their mean."""
    command = [sys.executable, __file__, "--child", "profile", "--version", str(version)]
    command += ["--threads", str(threads), "--sample", str(args.sample)]
    command += ["--chunk-size", str(args.chunk_size)]
    children = [
        subprocess.Popen(
            [*command, "--index", str(i)],
            env={**os.environ, **dict(pair.split("=", 1) for pair in args.env)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(count)
    ]
    results = []
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"profile step failed:\n{err.decode()[-3000:]}")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    merged = {k: sum(r[k] for r in results) / count for k in results[-1]}
    merged["ml_rate"] *= count
    return {**results[0], **merged}


# --- set-up and report ------------------------------------------------------------------------


def setup_django() -> None:
    sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
    import django

    django.setup()


def import_pool(cache: Path, args):
    from django.core.management import call_command

    from loupe.datasets.services import import_job_create, import_job_run
    from loupe.projects.services import project_create
    from ml.synthetic import INSPECTION_CLASSES

    call_command("migrate", verbosity=0)
    project = project_create(
        name=f"bench loop {time.time_ns()}",
        created_by=None,
        classes=list(INSPECTION_CLASSES),
        image_size=IMAGE_SIZE,
        train_epochs=args.epochs,
        retrain_every_n_labels=0,  # the script starts each loop itself, as the trigger would
    )
    job = import_job_create(
        project=project, path=str(cache / "images"), holdout_fraction=0.25, enqueue=False
    )
    job = import_job_run(import_job_id=job.pk)
    if job.status != "succeeded":
        raise RuntimeError(f"import failed: {job.error}")
    return project, job


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")


def print_report(rows: list[dict], args, loads: tuple) -> None:
    print(
        f"\nLoop latency, pool {args.n} PNGs of {IMAGE_SIZE}x{IMAGE_SIZE}, small CNN, "
        f"{args.epochs} epochs, chunks of {args.chunk_size}, {args.database}"
        f"{' (transaction_mode IMMEDIATE)' if args.sqlite_immediate else ''}, broker "
        f"{args.broker}, {os.cpu_count()} cores; load average {loads[0]:.1f} before, "
        f"{loads[1]:.1f} after"
    )
    _table(
        ["workers", "pixel cache", "threads", "train s", "score s", "select s", "other s"]
        + ["end-to-end s", "scoring items/s", "ml items/s", "ratio vs ml", "CPU ratio"],
        [
            [r["name"], r["cache"], str(r["threads"])]
            + [f"{r[k]:.1f}" for k in ("train", "score", "select", "other", "e2e")]
            + [f"{r['worker_rate']:,.0f}", f"{r['ml_rate']:,.0f}", f"{r['ratio']:.2f}"]
            + [f"{r['cpu_ratio']:.2f}"]
            for r in rows
        ],
    )
    print(
        "(pixel cache cold: the loop decodes every pool image, the first scoring of a project; "
        "warm: the next loop, which reads the pixels decoded by the first. other: queue hops "
        "and start-up between the steps; ml items/s: ml.scoring.score on decoded tensors, one "
        "process per worker at the same thread count, run at once, right after the loop; CPU "
        "ratio: ml CPU seconds per item / the workers' CPU seconds per item while scoring, "
        "which moves less with the machine's load than the throughput ratio)"
    )
    print("\nWhere a worker's scoring time goes, microseconds per item (measured in a child)")
    _table(
        ["workers", "pixel cache", "decode", "cache read", "forward", "write", "artifact"]
        + ["sum", "chunk busy", "train fit s", "worker CPU s", "labels"],
        [
            [r["name"], r["cache"]]
            + [f"{r[k]:.0f}" for k in ("decode_us", "cache_us", "score_us", "write_us")]
            + [f"{r['artifact_us']:.0f}", f"{r['sum_us']:.0f}"]
            + [f"{r['busy']:.0%}", f"{r['fit']:.1f}", f"{r['cpu']:.0f}", str(r["labels"])]
            for r in rows
        ],
    )
    print(
        "(decode: item_tensors from the PNGs; cache read: item_tensors from the pixel cache, "
        "to the same float tensor; forward: ml.scoring.score; write: the worker's prediction "
        "insert; sum: decode or cache read as the row's cache, + forward + write + artifact; "
        "chunk busy: sum of chunk seconds / (scoring wall time x workers))\n"
    )
    for r in rows:
        e2e_ok, ratio_ok = r["e2e"] < E2E_TARGET_S, r["ratio"] >= RATIO_TARGET
        verdict = "met" if ratio_ok else "MISSED"
        if r["cache"] == "cold":
            verdict = "the target is for re-scoring, with a warm cache"
        print(
            f"{r['name']}, {r['cache']} cache: end to end {r['e2e']:.1f} s (target < "
            f"{E2E_TARGET_S:.0f} s: {'met' if e2e_ok else 'MISSED'}); scoring ratio "
            f"{r['ratio']:.2f} (target >= {RATIO_TARGET:.2f}: {verdict})"
        )


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50000, help="unlabeled pool size")
    parser.add_argument("--workers", default="1,2", help="worker process counts to measure")
    parser.add_argument("--epochs", type=int, default=8, help="the project's train_epochs")
    parser.add_argument("--chunk-size", type=int, default=2500, help="LOUPE_SCORING_CHUNK_SIZE")
    parser.add_argument("--sample", type=int, default=4000, help="items for the ml baseline")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per loop")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default SQLite)")
    parser.add_argument("--broker-url", default="", help="e.g. redis://host:6379/0")
    parser.add_argument(
        "--sqlite-immediate",
        action="store_true",
        help="SQLite transactions take the write lock at BEGIN (Django's transaction_mode)",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra worker env"
    )
    parser.add_argument("--keep", action="store_true", help="keep the var dir for inspection")
    parser.add_argument("--child", choices=["profile"], help=argparse.SUPPRESS)
    parser.add_argument("--version", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads per worker (default cores/workers)"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    if args.child:
        setup_django()
        print(json.dumps(child_profile(args)))
        return

    cores = os.cpu_count() or 1
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    cache = ROOT / "var" / "bench-loop-cache" / str(args.n)
    if not (cache / "answers.json").exists():
        print(f"generating {args.n} pool images + {SEED_LABELS} seed into {cache} ...", flush=True)
        started = time.perf_counter()
        generate(cache, args.n)
        print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)
    answers = json.loads((cache / "answers.json").read_text())
    var_dir = Path(tempfile.mkdtemp(prefix="bench-loop-", dir=ROOT / "var"))
    args.database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    args.broker = args.broker_url.split(":", 1)[0] if args.broker_url else "filesystem"
    immediate_url = f"sqlite:///{var_dir / 'loupe.sqlite3'}?transaction_mode=IMMEDIATE"
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.django.local",
            "DJANGO_DEBUG": "false",  # as a production worker: no SQL kept per query
            "LOUPE_VAR_DIR": str(var_dir),
            "LOUPE_MEDIA_ROOT": str(var_dir / "media"),
            "LOUPE_IMPORT_ROOTS": str(cache),
            "LOUPE_SCORING_CHUNK_SIZE": str(args.chunk_size),
            "LOUPE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT)]),
            **({"DATABASE_URL": args.database_url} if args.database_url else {}),
            **(
                {"DATABASE_URL": immediate_url}
                if args.sqlite_immediate and not args.database_url
                else {}
            ),
            **({"CELERY_BROKER_URL": args.broker_url} if args.broker_url else {}),
        }
    )
    signal.signal(signal.SIGTERM, _interrupt)
    workers, project, rows = None, None, []
    loads = [os.getloadavg()[0]]
    try:
        setup_django()
        print(f"importing into a fresh project under {var_dir} ...", flush=True)
        started = time.perf_counter()
        project, job = import_pool(cache, args)
        print(f"  {job.imported} items in {time.perf_counter() - started:.0f} s", flush=True)
        for count in counts:
            threads = str(args.threads or max(1, cores // count))
            cache_dir = var_dir / f"pixels-{count}w"  # a fresh, cold cache per worker count
            env = {
                **os.environ,
                "LOUPE_LOG_LEVEL": "INFO",
                "LOUPE_TORCH_THREADS": threads,
                "OMP_NUM_THREADS": threads,
                "MKL_NUM_THREADS": threads,
                "LOUPE_PIXEL_CACHE_DIR": str(cache_dir),
                **dict(pair.split("=", 1) for pair in args.env),
            }
            os.environ["LOUPE_PIXEL_CACHE_DIR"] = str(cache_dir)  # for the profile children
            for cache in ("cold", "warm"):
                labeled = label_last_batch(project, answers)
                workers = Workers(count, env=env, log_dir=var_dir, tag=cache)
                workers.wait_ready()
                print(
                    f"{count} worker(s), {threads} torch thread(s) each, {labeled} new labels, "
                    f"{cache} pixel cache: loop started ...",
                    flush=True,
                )
                try:
                    row = measure_loop(project, args.timeout, {p.pid for p in workers.processes})
                except Exception:
                    print(workers.tail(), file=sys.stderr)
                    raise
                finally:
                    workers.stop()
                    workers = None
                print(f"  next batch selected after {row['e2e']:.1f} s; profiling ...", flush=True)
                # Right after the loop, so that both figures see about the same machine load.
                row.update(run_profiles(row["version"], args, int(threads), count))
                row.update(cache=cache, workers=count, threads=int(threads))
                row["ratio"] = row["worker_rate"] / row["ml_rate"]
                row["cpu_ratio"] = row["ml_cpu_us"] / max(1e-9, row["worker_cpu_us"])
                row["busy"] = row["chunk_seconds"] / max(1e-9, row["score_wall"] * count)
                row["other"] = row["e2e"] - row["train"] - row["score"] - row["select"]
                row["name"] = f"{count} worker" + ("s" if count > 1 else "")
                read = row["decode_us"] if cache == "cold" else row["cache_us"]
                row["sum_us"] = read + row["score_us"] + row["write_us"] + row["artifact_us"]
                print(
                    f"  scoring {row['worker_rate']:,.0f} items/s beside ml "
                    f"{row['ml_rate']:,.0f}: ratio {row['ratio']:.2f} (CPU per item: "
                    f"{row['cpu_ratio']:.2f})",
                    flush=True,
                )
                rows.append(row)
        loads.append(os.getloadavg()[0])
        print_report(rows, args, tuple(loads))
    finally:
        if workers is not None:
            workers.stop()
        if project is not None and args.database_url:
            project.delete()  # a shared database keeps nothing of the run
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
