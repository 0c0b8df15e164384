#!/usr/bin/env bash
# `make demo`: migrate, load the demo project, start a real worker, Label Studio and the web
# server, print the URL and credentials. Ctrl-C stops everything this script started.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
BIN="$REPO/.venv/bin"
HOST="${LOUPE_HOST:-127.0.0.1}"
PORT="${LOUPE_PORT:-8000}"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.django.local}"
export LOUPE_PUBLIC_URL="${LOUPE_PUBLIC_URL:-http://$HOST:$PORT}"
# Label Studio's data (projects, tasks, people) lives beside Loupe's own under var/: a fresh
# var/ is a fresh pair, and the logins the banner prints are the ones Label Studio knows. The
# install and the migrated template stay shared in LABEL_STUDIO_HOME.
export LABEL_STUDIO_DATA_DIR="${LABEL_STUDIO_DATA_DIR:-$REPO/var/labelstudio-data}"
mkdir -p var/log

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping Loupe..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${LS_STARTED:-}" ] && bash scripts/labelstudio.sh stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

"$BIN/python" manage.py migrate --noinput -v0
"$BIN/python" manage.py collectstatic --noinput -v0

"$BIN/celery" -A config.celery worker -Q default,gpu --concurrency 1 --loglevel INFO \
  > var/log/worker.log 2>&1 &
pids+=($!)
echo "Worker started (log: var/log/worker.log)"
# Beat: reconciliation with Label Studio (its webhooks are sent once), pending pushes, resumed
# work and the loop's schedules.
"$BIN/celery" -A config.celery beat --loglevel INFO \
  > var/log/beat.log 2>&1 &
pids+=($!)
echo "Beat started (log: var/log/beat.log)"

if [ "${LOUPE_DEMO_LABEL_STUDIO:-1}" = 1 ]; then
  if bash scripts/labelstudio.sh install >var/log/labelstudio-install.log 2>&1 \
     && bash scripts/labelstudio.sh start; then
    LS_STARTED=1
  else
    echo "Label Studio did not start (see var/log/labelstudio-install.log); Loupe runs without it."
  fi
fi

demo_args=(--background --start-loop)
[ -n "${LS_STARTED:-}" ] && demo_args+=(--label-studio)
"$BIN/python" manage.py loupe_demo "${demo_args[@]}" "$@"

"$BIN/gunicorn" config.wsgi:application --bind "$HOST:$PORT" --workers 2 --threads 4 \
  --access-logfile var/log/web-access.log --error-logfile var/log/web.log &
pids+=($!)

for _ in $(seq 1 300); do
  curl -fs -o /dev/null "http://$HOST:$PORT/login/" 2>/dev/null && break
  sleep 0.2
done
password="$(cat var/demo-password.txt)"
ls_logins="$("$BIN/python" manage.py loupe_label_studio_logins 2>/dev/null | sed 's/^/    /' || true)"
cat <<MSG

  Loupe is running:   http://$HOST:$PORT/
  Log in as admin / $password   (also: engineer, expert, manager with the same password)
  API docs:           http://$HOST:$PORT/api/docs/
  Label Studio:       ${LABEL_STUDIO_URL:-http://127.0.0.1:8080}   each person labels as themselves:
${ls_logins:-    (no Label Studio users yet: they are made when the project syncs)}
  Press Ctrl-C to stop everything.

MSG
wait -n "${pids[@]}"
