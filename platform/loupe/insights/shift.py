"""Covariate shift: is the model trained on what it will see? Domain-classifier tests
(ml.drift) on the latest model's embeddings, between the labeled set and the pool, between
the pool's sources, and between the newest import and the data before it.

Embeddings come from the latest scoring run's artifacts (the pool) and, for the labeled
set, from the same model version run over a sample of labeled items. The result is cached
in media storage per scoring run: it costs seconds, and it only changes with a new scoring.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from loupe.datasets.models import Item, ItemState, Split
from loupe.datasets.storage import file_replace
from loupe.insights.common import latest_scoring_run
from loupe.learning.models import ModelVersion, ScoringRun
from loupe.learning.scoring import scoring_arrays, version_model
from loupe.projects.models import Project
from loupe.tasktypes import get_task_type

# Bump when the computation changes, so older cached results are not served.
CACHE_FORMAT = 1
POOL_SAMPLE = 2000
LABELED_SAMPLE = 500
MIN_GROUP = 20
MAX_SOURCES = 6
TEST_OPTIONS = {"max_samples": 500, "n_permutations": 50, "seed": 0}


def _cache_name(project: Project, run: ScoringRun) -> str:
    return f"insights/{project.slug}/drift-scoring-{run.pk}-f{CACHE_FORMAT}.json"


def drift(*, project: Project, refresh: bool = False, compute: bool = True) -> dict:
    """Shift tests for the latest scoring run, from the cache when there. With
    `compute=False` a missing result is reported as not computed instead of computed now."""
    run = latest_scoring_run(project)
    if run is None:
        return {
            "available": False,
            "message": "Drift is measured on the model's view of the pool: train a model and "
            "score the pool first.",
        }
    name = _cache_name(project, run)
    if not refresh and default_storage.exists(name):
        with default_storage.open(name, "rb") as handle:
            return {**json.loads(handle.read()), "cached": True}
    if not compute:
        return {
            "available": False,
            "computed": False,
            "scoring_run": run.pk,
            "message": "Not computed yet for the latest scoring.",
        }
    result = drift_compute(project=project, run=run)
    file_replace(name=name, content=json.dumps(result).encode())
    return {**result, "cached": False}


def _verdict(test: dict) -> str:
    if not test["shifted"]:
        return "no detectable shift"
    return "strong shift" if test["auc"] >= 0.75 else "detectable shift"


def _compare(name: str, a_label: str, b_label: str, a: np.ndarray, b: np.ndarray) -> dict:
    from ml.drift import domain_classifier_test

    test = domain_classifier_test(a, b, **TEST_OPTIONS)
    return {
        "name": name,
        "a": a_label,
        "b": b_label,
        **{k: test[k] for k in ("auc", "ci_low", "ci_high", "p_value", "n_a", "n_b")},
        "shifted": test["shifted"],
        "verdict": _verdict(test),
    }


def _embed(version: ModelVersion, rows: list[tuple]) -> np.ndarray:
    """Embeddings of items (rows of file, extra files, sha256) by the model version, as its
    scoring computed them for the pool: through the task type, whose inputs for a pair are
    its two images."""
    task_type = get_task_type(version.project.task_type)
    model = version_model(model_version=version)
    x = task_type.item_inputs(
        files=[r[0] for r in rows],
        extra_files=[tuple(r[1] or ()) for r in rows],
        cache_keys=[r[2] for r in rows],
        image_size=version.image_size,
    )
    batch = settings.LOUPE_SCORING_BATCH_SIZE
    return task_type.ml_spec().predict(model, x, batch_size=batch).embeddings


def drift_compute(*, project: Project, run: ScoringRun) -> dict:
    """Runs the tests now (seconds on a CPU); `drift` caches what this returns."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    arrays = scoring_arrays(run=run)
    base = {"scoring_run": run.pk, "model_version": run.model_version.version}
    if arrays.embeddings is None or arrays.embeddings.size == 0:
        return {**base, "available": False, "message": "The latest scoring kept no embeddings."}
    if len(arrays) > POOL_SAMPLE:
        arrays = arrays.take(np.sort(rng.choice(len(arrays), size=POOL_SAMPLE, replace=False)))
    ids = arrays.item_ids
    meta = {
        row[0]: row[1:]
        for row in Item.objects.filter(pk__in=[int(i) for i in ids]).values_list(
            "id", "state", "source", "import_job_id"
        )
    }
    # Items labeled since the scoring left the pool: the pool is what is still unlabeled.
    in_pool = np.array([meta.get(int(i), ("",))[0] == ItemState.UNLABELED for i in ids])
    pool_items = arrays.take(in_pool)
    pool_ids, pool = pool_items.item_ids, pool_items.embeddings
    tests, notes = [], []

    labeled = list(
        Item.objects.filter(
            project=project, ground_truth__isnull=False, ground_truth__needs_review=False
        )
        .exclude(split=Split.HOLDOUT)
        .order_by("?")
        .values_list("file", "extra_files", "sha256")[:LABELED_SAMPLE]
    )
    if len(labeled) >= MIN_GROUP and len(pool) >= MIN_GROUP:
        try:
            labeled_embeddings = _embed(run.model_version, labeled)
        except (OSError, RuntimeError, KeyError) as exc:
            # Weights or images gone: the other comparisons still stand.
            notes.append(f"Labeled set vs pool skipped: the model could not embed them ({exc}).")
        else:
            tests.append(
                _compare(
                    "labeled vs pool",
                    f"labeled ({len(labeled)} sampled)",
                    f"pool ({len(pool)} sampled)",
                    labeled_embeddings,
                    pool,
                )
            )
    else:
        notes.append(
            f"Labeled set vs pool needs {MIN_GROUP} items on each side "
            f"(labeled: {len(labeled)}, pool: {len(pool)})."
        )

    sources = np.array([meta.get(int(i), ("", "", None))[1] or "(none)" for i in pool_ids])
    counts = Counter(sources.tolist())
    if len(counts) >= 2:
        for source, n in counts.most_common(MAX_SOURCES):
            rest = sources != source
            if n >= MIN_GROUP and rest.sum() >= MIN_GROUP:
                tests.append(
                    _compare(
                        f"source {source} vs other sources",
                        f"{source} ({n})",
                        f"other sources ({int(rest.sum())})",
                        pool[~rest],
                        pool[rest],
                    )
                )
    else:
        notes.append("The pool has one source: no comparison between sources.")

    imports = np.array([meta.get(int(i), ("", "", None))[2] or 0 for i in pool_ids])
    if len(set(imports.tolist())) >= 2:
        newest = imports == imports.max()
        if newest.sum() >= MIN_GROUP and (~newest).sum() >= MIN_GROUP:
            tests.append(
                _compare(
                    "newest import vs earlier data",
                    f"import {int(imports.max())} ({int(newest.sum())})",
                    f"earlier imports ({int((~newest).sum())})",
                    pool[newest],
                    pool[~newest],
                )
            )
    return {
        **base,
        "available": bool(tests),
        "computed_at": timezone.now().isoformat(),
        "seconds": round(time.perf_counter() - started, 2),
        "tests": tests,
        "notes": notes,
        "message": "" if tests else "Not enough data on either side to compare yet.",
    }
