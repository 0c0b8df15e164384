"""Loupe's own settings."""

from pathlib import Path

from config.env import BASE_DIR, VAR_DIR, env

# Server-side folders an import may read from; anything outside is refused.
LOUPE_IMPORT_ROOTS = [
    str(p) for p in env.list("LOUPE_IMPORT_ROOTS", default=[str(VAR_DIR / "imports")])
]
# Uploaded archives wait here for their import, each in its project's folder
# (<LOUPE_UPLOAD_DIR>/<project id>/); this folder is never an import root.
LOUPE_UPLOAD_DIR = Path(env.str("LOUPE_UPLOAD_DIR", default=str(VAR_DIR / "uploads")))
# The largest file an upload may carry; a larger one is refused with 413.
LOUPE_MAX_UPLOAD_BYTES = env.int("LOUPE_MAX_UPLOAD_BYTES", default=2 * 1024**3)
LOUPE_IMPORT_BATCH_SIZE = env.int("LOUPE_IMPORT_BATCH_SIZE", default=500)
LOUPE_MAX_IMAGE_BYTES = env.int("LOUPE_MAX_IMAGE_BYTES", default=50 * 1024 * 1024)
LOUPE_MAX_IMAGE_PIXELS = env.int("LOUPE_MAX_IMAGE_PIXELS", default=80_000_000)
# When true, jobs run in the calling process instead of being sent to a worker (tests).
LOUPE_JOBS_EAGER = env.bool("LOUPE_JOBS_EAGER", default=False)
LOUPE_DEMO_DIR = Path(env.str("LOUPE_DEMO_DIR", default=str(VAR_DIR / "imports" / "demo")))
LOUPE_REPO_DIR = BASE_DIR
# A running job whose worker sent no heartbeat for this long is taken over by another worker.
LOUPE_STALE_AFTER_SECONDS = env.int("LOUPE_STALE_AFTER_SECONDS", default=120)
LOUPE_SCORING_CHUNK_SIZE = env.int("LOUPE_SCORING_CHUNK_SIZE", default=2000)
LOUPE_SCORING_BATCH_SIZE = env.int("LOUPE_SCORING_BATCH_SIZE", default=256)
# MC-dropout draws per item when the project's strategy needs them (BALD).
LOUPE_MC_SAMPLES = env.int("LOUPE_MC_SAMPLES", default=10)
# Epochs without a better holdout score before training stops and keeps its best epoch
# (0: train every epoch and keep the last, the default). The holdout an epoch is chosen on
# reads optimistic, and the kept epoch did no better on untouched data
# (benchmarks/holdout_honesty.py), so by default the holdout only judges.
LOUPE_EARLY_STOPPING_PATIENCE = env.int("LOUPE_EARLY_STOPPING_PATIENCE", default=0)
# Early stopping only listens to a holdout at least this large: on a handful of items the
# best epoch is chance, and a model stopped at step 2 is no model.
LOUPE_EARLY_STOPPING_MIN_HOLDOUT = env.int("LOUPE_EARLY_STOPPING_MIN_HOLDOUT", default=50)
# Each class keeps at least this many holdout items once it has more training labels than that
# (the rest of the holdout is the project's holdout_fraction, drawn by content hash).
LOUPE_HOLDOUT_MIN_PER_CLASS = env.int("LOUPE_HOLDOUT_MIN_PER_CLASS", default=2)
# A cold start (no model yet) reads the appearance of at most this many pool items, drawn at
# random, and picks typical items of each kind among them.
LOUPE_COLD_START_SAMPLE = env.int("LOUPE_COLD_START_SAMPLE", default=4000)
# Bootstrap resamples behind the confidence intervals of holdout metrics.
LOUPE_BOOTSTRAP_SAMPLES = env.int("LOUPE_BOOTSTRAP_SAMPLES", default=1000)
# Optimisation steps a model gets at least: with a few dozen labels, the project's epochs are
# a handful of steps, too few for a network trained from scratch to learn the rare classes.
LOUPE_MIN_TRAIN_STEPS = env.int("LOUPE_MIN_TRAIN_STEPS", default=200)
# Decoded pixels kept at the model's image size, so re-scoring a pool skips decoding; the
# folder defaults to <media>/cache/pixels (local to the workers, like the media they read).
LOUPE_PIXEL_CACHE = env.bool("LOUPE_PIXEL_CACHE", default=True)
LOUPE_PIXEL_CACHE_DIR = env.str("LOUPE_PIXEL_CACHE_DIR", default="")
# A new model version fine-tunes the previous one (same model, image size and classes) for
# this many steps instead of training from scratch; 0 always trains from scratch.
LOUPE_WARM_START_STEPS = env.int("LOUPE_WARM_START_STEPS", default=100)
# Every this many versions one is trained from scratch again (1: every version; 0: only when
# the classes, image size or model change).
LOUPE_FULL_RETRAIN_EVERY = env.int("LOUPE_FULL_RETRAIN_EVERY", default=5)
