"""Loupe under concurrent clients: the item list, predictions and statistics endpoints, and a
burst of Label Studio webhooks, served by gunicorn and driven from a second process on
loopback, beside a baseline endpoint measured the same way in the same run.

    .venv/bin/python benchmarks/load.py [--items 200000] [--labels 40000] [--clients 8]
                                        [--requests 200] [--webhooks 1000]

The project is benchmarks/insights.py's, built (once) in the PostgreSQL database
`loupe_bench` at the size asked. gunicorn runs with 2 workers x 4 threads, as `make demo` and
the image do; the broker is Redis (database 5, emptied before and after). Each endpoint gets
`--requests` requests from `--clients` threads of a separate process. The baseline is
`GET /api/v1/me/` (authentication and one small query): the ratio column is the endpoint's
p50 over the baseline's, so a noisy machine moves both. Webhooks are ANNOTATION_CREATED events
for the project (linked as Label Studio project 9999): the web server checks the secret and
the body and queues each for a worker, which this benchmark does not run; afterwards it
counts the queued messages, so a lost or duplicated webhook shows.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT), str(ROOT / "benchmarks")]
SERVER = "postgres://postgres@127.0.0.1:5432"
os.environ.setdefault("DATABASE_URL", f"{SERVER}/loupe_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.django.local")
os.environ.setdefault("LOUPE_MEDIA_ROOT", str(ROOT / "var" / "bench-media"))
os.environ.setdefault("LOUPE_LOG_LEVEL", "WARNING")
os.environ["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/5"
os.environ["LABEL_STUDIO_WEBHOOK_SECRET"] = "bench-webhook-secret"
PORT = 8765
LS_PROJECT = 9999
QUEUE = "default"


def prepare(items: int, labels: int) -> str:
    """Builds the project, links it to a Label Studio project id, returns an API token."""
    import insights

    insights.ensure_database()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from loupe.accounts.services import user_token
    from loupe.projects.models import Project

    call_command("migrate", verbosity=0)
    insights.build(items, labels)
    Project.objects.filter(slug="bench").update(ls_project_id=LS_PROJECT)
    admin, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_superuser": True, "is_staff": True}
    )
    return user_token(user=admin)


def redis_queue_length() -> int:
    import redis

    return redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).llen(QUEUE)


def redis_flush() -> None:
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


def start_server() -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}"}
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    import httpx

    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{PORT}/login/", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


# --- the client side, run in a separate process ------------------------------------------


def drive(spec: dict) -> dict:
    """`requests` requests from `clients` threads; latencies in ms and error counts."""
    import httpx

    latencies, errors, lock = [], {}, threading.Lock()
    todo = list(range(spec["requests"]))

    def worker():
        with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=60) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                started = time.perf_counter()
                try:
                    if spec["method"] == "POST":
                        body = spec["body"].replace("{i}", str(i))
                        response = client.post(spec["url"], content=body, headers=spec["headers"])
                    else:
                        response = client.get(spec["url"], headers=spec["headers"])
                    status = response.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    if status != 200:
                        errors[str(status)] = errors.get(str(status), 0) + 1

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(spec["clients"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return {"latencies": latencies, "errors": errors, "wall": wall}


def run_client(spec: dict) -> dict:
    """The load comes from another process, so the server's CPU is not the client's."""
    out = subprocess.run(
        [sys.executable, __file__, "--client", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def summary(result: dict) -> tuple[float, float, float, int]:
    lat = sorted(result["latencies"])
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
    return len(lat) / result["wall"], p50, p99, sum(result["errors"].values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--labels", type=int, default=40_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--webhooks", type=int, default=1000)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(drive(json.loads(args.client))))
        return

    token = prepare(args.items, args.labels)
    auth = {"Authorization": f"Token {token}"}
    redis_flush()
    server = start_server()
    try:
        gets = [
            ("baseline: /me/", "/api/v1/me/"),
            ("items, first page", "/api/v1/projects/bench/items/"),
            ("items, unlabeled", "/api/v1/projects/bench/items/?state=unlabeled"),
            ("predictions, most uncertain", "/api/v1/projects/bench/predictions/"),
            ("insights: classes", "/api/v1/projects/bench/insights/classes/"),
            ("insights: throughput", "/api/v1/projects/bench/insights/throughput/"),
            ("insights: eta", "/api/v1/projects/bench/insights/eta/"),
            ("insights: learning-curve", "/api/v1/projects/bench/insights/learning-curve/"),
        ]
        rows = []
        for name, url in gets:
            run_client({"method": "GET", "url": url, "headers": auth, "clients": 2, "requests": 4})
            spec = {
                "method": "GET",
                "url": url,
                "headers": auth,
                "clients": args.clients,
                "requests": args.requests,
            }
            rows.append((name, summary(run_client(spec))))
        body = json.dumps(
            {
                "action": "ANNOTATION_CREATED",
                "project": {"id": LS_PROJECT},
                "annotation": {
                    "id": 10_000_000,
                    "task": 1,
                    "result": [],
                    "completed_by": 1,
                    "updated_at": "2026-01-05T09:00:00Z",
                },
                "task": {"id": 1, "project": LS_PROJECT, "data": {"loupe_item_id": 1}},
            }
        ).replace("10000000", "1000000{i}")
        before = redis_queue_length()
        hooks = run_client(
            {
                "method": "POST",
                "url": "/api/v1/labeling/webhook/",
                "headers": {
                    "X-Loupe-Webhook-Secret": os.environ["LABEL_STUDIO_WEBHOOK_SECRET"],
                    "Content-Type": "application/json",
                },
                "body": body,
                "clients": args.clients,
                "requests": args.webhooks,
            }
        )
        queued = redis_queue_length() - before
        rows.append((f"webhooks ({args.webhooks})", summary(hooks)))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        redis_flush()

    base_p50 = rows[0][1][1]
    print(
        f"\ngunicorn 2x4 on PostgreSQL, {args.items:,} items / {args.labels:,} labels, "
        f"{args.clients} concurrent clients in another process, {args.requests} requests each"
    )
    print("| endpoint | req/s | p50 ms | p99 ms | errors | p50 / baseline |")
    print("|---|---|---|---|---|---|")
    for name, (rate, p50, p99, errors) in rows:
        print(f"| {name} | {rate:.0f} | {p50:.0f} | {p99:.0f} | {errors} | {p50 / base_p50:.1f} |")
    answered = args.webhooks - summary(hooks)[3]
    print(f"\nwebhooks answered 200: {answered}, queued for a worker: {queued}")
    if hooks["errors"]:
        print(f"webhook errors: {hooks['errors']}")


if __name__ == "__main__":
    main()
