"""Reads settings from the environment. Every setting has an embedded default that works on a
bare machine (SQLite under var/, a filesystem broker, media under var/media)."""

from pathlib import Path

import environ

# platform/config/env.py -> repository root
BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(environ.Env().str("LOUPE_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(str(env_file))
