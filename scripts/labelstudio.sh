#!/usr/bin/env bash
# Runs a local Label Studio server for Loupe, in its own virtual environment.
#
#   scripts/labelstudio.sh install    create var/labelstudio/venv with label-studio==1.23.2
#   scripts/labelstudio.sh template   (re)build the migrated data-dir template (done by start if needed)
#   scripts/labelstudio.sh start      start headless on 127.0.0.1, wait until healthy, print credentials
#   scripts/labelstudio.sh stop       stop the server started by `start`
#   scripts/labelstudio.sh status     exit 0 when the server answers and the token works
#
# Settings (environment, with defaults):
#   LABEL_STUDIO_PORT            8080
#   LABEL_STUDIO_USERNAME        admin@loupe.local
#   LABEL_STUDIO_PASSWORD        loupe-admin
#   LABEL_STUDIO_USER_TOKEN      loupe-demo-token-0123456789 (6..40 characters; falls back to
#                                LABEL_STUDIO_API_TOKEN, the name Loupe's settings read)
#   LABEL_STUDIO_DATA_DIR        var/labelstudio/data   (database, uploads, pid file, log)
#   LABEL_STUDIO_HOME            var/labelstudio        (venv and template live here)
#   LOUPE_MEDIA_ROOT             var/media              (served to Label Studio as local files)
#   LABEL_STUDIO_START_TIMEOUT   180 seconds
#
# Label Studio pins Django 5.2 and DRF 3.17.2, so it never shares Loupe's .venv.
# A cold start migrates an empty database (~45 s); `start` instead copies a migrated
# template of the data dir, which brings a fresh server up in a few seconds.
set -euo pipefail

LS_VERSION="1.23.2"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LS_HOME="${LABEL_STUDIO_HOME:-$REPO/var/labelstudio}"
VENV="$LS_HOME/venv"
TEMPLATE="$LS_HOME/template"
DATA_DIR="${LABEL_STUDIO_DATA_DIR:-$LS_HOME/data}"
PORT="${LABEL_STUDIO_PORT:-8080}"
BIND_HOST="127.0.0.1"
USERNAME="${LABEL_STUDIO_USERNAME:-admin@loupe.local}"
PASSWORD="${LABEL_STUDIO_PASSWORD:-loupe-admin}"
TOKEN="${LABEL_STUDIO_USER_TOKEN:-${LABEL_STUDIO_API_TOKEN:-loupe-demo-token-0123456789}}"
MEDIA_ROOT="${LOUPE_MEDIA_ROOT:-$REPO/var/media}"
START_TIMEOUT="${LABEL_STUDIO_START_TIMEOUT:-180}"
PIDFILE="$DATA_DIR/labelstudio.pid"
LOGFILE="$DATA_DIR/labelstudio.log"
URL="http://$BIND_HOST:$PORT"

die() { echo "labelstudio: $*" >&2; exit 1; }

# Runs a command in the environment of every Label Studio process: a clean one (Loupe's
# DJANGO_SETTINGS_MODULE, PYTHONPATH or DATABASE_URL must not leak into it), keeping any
# LABEL_STUDIO_* the caller set, then headless, no phoning home, Loupe's media folder served
# as local files, and the legacy "Token <key>" auth the SDK uses for non-JWT keys.
ls_exec() {
  local data_dir="$1"
  shift
  local vars=("PATH=$PATH" "HOME=${HOME:-/tmp}" "LANG=${LANG:-C.UTF-8}" "TMPDIR=${TMPDIR:-/tmp}")
  local name
  for name in $(compgen -e | grep '^LABEL_STUDIO_' || true); do
    vars+=("$name=${!name}")
  done
  vars+=(
    "LABEL_STUDIO_BASE_DATA_DIR=$data_dir"
    "LABEL_STUDIO_USERNAME=$USERNAME"
    "LABEL_STUDIO_PASSWORD=$PASSWORD"
    "LABEL_STUDIO_USER_TOKEN=$TOKEN"
    "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true"
    "LABEL_STUDIO_SSRF_PROTECTION_ENABLED=false"
    "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true"
    "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=$MEDIA_ROOT"
    "SENTRY_DSN="
    "FRONTEND_SENTRY_DSN="
    "LATEST_VERSION_CHECK=false"
    "COLLECT_ANALYTICS=false"
  )
  exec env -i "${vars[@]}" "$@"
}

credentials_stamp() {
  printf '%s\n%s\n%s\n' "$LS_VERSION" "$USERNAME" "$(printf '%s:%s' "$PASSWORD" "$TOKEN" | sha256sum | cut -d' ' -f1)"
}

require_venv() {
  [[ -x "$VENV/bin/label-studio" ]] || die "not installed; run: scripts/labelstudio.sh install"
}

cmd_install() {
  if [[ -x "$VENV/bin/python" ]] &&
    [[ "$("$VENV/bin/python" -c 'import label_studio; print(label_studio.__version__)' 2>/dev/null)" == "$LS_VERSION" ]]; then
    echo "label-studio $LS_VERSION already installed in $VENV"
    return
  fi
  mkdir -p "$LS_HOME"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install "label-studio==$LS_VERSION"
  # Label Studio itself needs no torch; a CUDA build would cost gigabytes for nothing.
  if "$VENV/bin/pip" list 2>/dev/null | grep -qiE '^(torch|nvidia-)'; then
    die "a torch/CUDA package was pulled into $VENV; remove it"
  fi
  echo "label-studio $LS_VERSION installed in $VENV"
}

# Migrate an empty database and create the user, organization and token once, without
# starting a server; every later start copies this directory.
cmd_template() {
  require_venv
  local tmp="$TEMPLATE.building.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  echo "building Label Studio template in $TEMPLATE (migrates the database, ~45 s)"
  local t0=$SECONDS
  if ! (ls_exec "$tmp" "$VENV/bin/label-studio" init --quiet --no-browser \
    --enable-legacy-api-token) >"$tmp/init.log" 2>&1; then
    cat "$tmp/init.log" >&2
    rm -rf "$tmp"
    die "template build failed"
  fi
  credentials_stamp >"$tmp/.loupe-template"
  rm -rf "$TEMPLATE"
  mv "$tmp" "$TEMPLATE"
  echo "template ready in $((SECONDS - t0)) s"
}

template_is_current() {
  [[ -f "$TEMPLATE/.loupe-template" ]] && [[ "$(cat "$TEMPLATE/.loupe-template")" == "$(credentials_stamp)" ]]
}

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

healthy() {
  curl -sf --max-time 2 "$URL/health" >/dev/null 2>&1
}

token_works() {
  curl -sf --max-time 5 -H "Authorization: Token $TOKEN" "$URL/api/current-user/whoami" >/dev/null 2>&1
}

print_credentials() {
  echo "Label Studio: $URL"
  echo "  user:     $USERNAME"
  echo "  password: $PASSWORD"
  echo "  token:    $TOKEN"
  echo "  data dir: $DATA_DIR"
  echo "  log:      $LOGFILE"
}

cmd_start() {
  require_venv
  if pid="$(running_pid)"; then
    echo "already running (pid $pid)"
    print_credentials
    return
  fi
  # Label Studio silently moves to the next free port when its port is busy; refuse instead,
  # so the URL Loupe is configured with is the one that answers.
  if healthy || (exec 3<>"/dev/tcp/$BIND_HOST/$PORT") 2>/dev/null; then
    die "port $PORT is already in use; set LABEL_STUDIO_PORT"
  fi
  if [[ ! -f "$DATA_DIR/label_studio.sqlite3" ]]; then
    template_is_current || cmd_template
    mkdir -p "$(dirname "$DATA_DIR")"
    rm -rf "$DATA_DIR"
    cp -a "$TEMPLATE" "$DATA_DIR"
  fi
  mkdir -p "$MEDIA_ROOT"
  local t0=$SECONDS
  # The subshell execs (env, nohup) the server, so $! is its pid: with --noreload it is one process.
  (
    ls_exec "$DATA_DIR" nohup "$VENV/bin/label-studio" start --no-browser \
      --internal-host "$BIND_HOST" --port "$PORT" --enable-legacy-api-token
  ) >"$LOGFILE" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDFILE"
  until healthy && token_works; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$LOGFILE" >&2
      rm -f "$PIDFILE"
      die "server exited during start-up (log: $LOGFILE)"
    fi
    if ((SECONDS - t0 > START_TIMEOUT)); then
      tail -n 30 "$LOGFILE" >&2
      cmd_stop >/dev/null
      die "server not healthy after ${START_TIMEOUT} s, or the token is refused (log: $LOGFILE)"
    fi
    sleep 0.5
  done
  echo "started in $((SECONDS - t0)) s (pid $pid)"
  print_credentials
}

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PIDFILE"
    echo "not running"
    return
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  echo "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)" && healthy && token_works; then
    echo "running (pid $pid)"
    print_credentials
    return 0
  fi
  if [[ -n "${pid:-}" ]]; then
    echo "process $pid is alive but $URL is not healthy or refuses the token"
  else
    echo "not running"
  fi
  return 3
}

case "${1:-}" in
  install) cmd_install ;;
  template) cmd_template ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
