"""Import throughput: importing N generated images into a project, beside the raw cost of
reading and hashing the same files (the ratio is the figure; the goal is >= 50%).

    .venv/bin/python benchmarks/import_throughput.py [--n 20000] [--database-url URL]

Each side runs in its own process, so its peak memory (max RSS) is measured alone.
Without --database-url the import uses a fresh SQLite file; pass a PostgreSQL URL to measure
the production database."""

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generate(root: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    classes = ["good"] * 8 + ["scratch", ""]  # 10% unlabeled (flat), 10% rare class
    for i in range(n):
        label = classes[i % len(classes)]
        folder = root / label if label else root
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.png", compress_level=1)


def child_raw(root: Path) -> dict:
    started = time.perf_counter()
    count = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as handle:
                hashlib.sha256(handle.read()).hexdigest()
            count += 1
    return {"files": count, "seconds": time.perf_counter() - started}


def child_raw_copy(root: Path) -> dict:
    """Read, hash and write each file once under its hash: the I/O an import cannot avoid."""
    target = Path(os.environ["LOUPE_MEDIA_ROOT"]) / "raw-copy"
    started = time.perf_counter()
    count = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as handle:
                content = handle.read()
            digest = hashlib.sha256(content).hexdigest()
            folder = target / digest[:2]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / digest).write_bytes(content)
            count += 1
    return {"files": count, "seconds": time.perf_counter() - started}


def child_import(root: Path) -> dict:
    sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from loupe.datasets.services import import_job_create, import_job_run
    from loupe.projects.services import project_create

    project = project_create(name="bench", created_by=None, classes=["good", "scratch"])
    job = import_job_create(project=project, path=str(root), enqueue=False)
    started = time.perf_counter()
    job = import_job_run(import_job_id=job.pk)
    seconds = time.perf_counter() - started
    assert job.status == "succeeded", job.error
    return {"files": job.imported, "rejected": job.rejected, "seconds": seconds}


CHILDREN = {"raw": child_raw, "raw_copy": child_raw_copy, "import": child_import}


def run_child(kind: str, root: Path, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--root", str(root)],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} step failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--child", choices=sorted(CHILDREN))
    parser.add_argument("--root")
    args = parser.parse_args()

    if args.child:
        result = CHILDREN[args.child](Path(args.root))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    (ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-import-", dir=ROOT / "var") as tmp:
        tmp = Path(tmp)
        root = tmp / "imports" / "bench"
        print(f"generating {args.n} images ...", flush=True)
        generate(root, args.n)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.django.local",
            "LOUPE_VAR_DIR": str(tmp / "var"),
            "LOUPE_IMPORT_ROOTS": str(tmp / "imports"),
            "LOUPE_MEDIA_ROOT": str(tmp / "media"),
            "LOUPE_LOG_LEVEL": "WARNING",
        }
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        raw = run_child("raw", root, env)
        raw_copy = run_child("raw_copy", root, env)
        imported = run_child("import", root, env)

    raw_rate = raw["files"] / raw["seconds"]
    copy_rate = raw_copy["files"] / raw_copy["seconds"]
    import_rate = imported["files"] / imported["seconds"]
    database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    print()
    print(f"Import throughput, {args.n} PNG files of 32x32, database {database}")
    print(f"{'step':<34}{'files':>8}{'seconds':>10}{'files/s':>10}{'peak RSS MB':>13}")
    for name, row, rate in (
        ("raw read + sha256 (baseline)", raw, raw_rate),
        ("raw read + sha256 + write copy", raw_copy, copy_rate),
        ("Loupe import (validate, store, DB)", imported, import_rate),
    ):
        print(
            f"{name:<34}{row['files']:>8}{row['seconds']:>10.2f}{rate:>10.0f}"
            f"{row['peak_rss_mb']:>13.0f}"
        )
    print(f"ratio import / raw read+hash:       {import_rate / raw_rate:.2f}  (goal >= 0.50)")
    print(f"ratio import / raw read+hash+write: {import_rate / copy_rate:.2f}")


if __name__ == "__main__":
    main()
