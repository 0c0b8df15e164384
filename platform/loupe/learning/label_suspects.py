"""Labels a model version doubts: confident learning (ml.label_errors) over the version's
probabilities for the project's labeled items, computed once per version in a worker and
kept as a small JSON artifact (`label_review/<project>/v<version>.json`).

Which evidence each suspect stands on matters, so every labeled item is put in one group:

- `holdout`: the fixed holdout. The version never trained on these labels.
- `labeled_since`: labeled after the version was trained (or imported since), so it never
  trained on them either; where the version scored the item while it was in the pool, its
  stored prediction is used as it is.
- `training`: the labels the version trained on. A network remembers its training labels,
  so it rarely contradicts them: these predictions are in-sample and weaker evidence (a
  contradiction found here is real, but many errors go unseen).

A suspect is listed only when the model gives the class it prefers at least
SUSPECT_MIN_CONFIDENCE: confident learning compares an item with its class's average, and a
model near chance is "confident" of many items that way, none worth an expert's time.

The first two are out of sample. Confident learning runs on each side separately (a class's
threshold is the mean probability of the class on its own items, and in-sample
probabilities are higher), so in-sample confidence never raises the bar out of sample.
Probabilities are the version's calibrated ones (its temperature), as scoring gives them.
"""

from __future__ import annotations

import json
import logging

import numpy as np
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.utils import timezone

from loupe import jobs
from loupe.datasets.storage import file_replace
from loupe.labeling.models import GroundTruth
from loupe.learning.models import ModelVersion, Prediction
from loupe.projects.models import Project
from ml.artifacts import load

logger = logging.getLogger(__name__)

EVIDENCE_HOLDOUT = "holdout"
EVIDENCE_LABELED_SINCE = "labeled_since"
EVIDENCE_TRAINING = "training"
OUT_OF_SAMPLE = (EVIDENCE_HOLDOUT, EVIDENCE_LABELED_SINCE)
# Suspects kept per side of the evidence, most suspect first.
MAX_SUSPECTS = 200
# The least probability of the preferred class that makes a listed suspect.
SUSPECT_MIN_CONFIDENCE = 0.5
SCORE_BATCH = 256
# A request to scan is not repeated for this long while its worker runs.
REQUEST_SECONDS = 900


def scan_name(model_version: ModelVersion) -> str:
    return f"label_review/{model_version.project.slug}/v{model_version.version}.json"


def _trained_on(version: ModelVersion) -> set[int] | None:
    """Ids of the items the version trained on, from the embeddings it kept of them."""
    if not version.train_embeddings:
        return None
    try:
        with default_storage.open(version.train_embeddings.name, "rb") as handle:
            return set(load(handle).item_ids.tolist())
    except (OSError, KeyError, ValueError) as exc:
        logger.warning("training items of v%s unreadable: %s", version.version, exc)
        return None


def _labeled_rows(version: ModelVersion) -> list[tuple[int, str, str, int, bool]]:
    """(item id, file, sha256, class index in the version, in holdout) of every usable
    label whose class the version knows."""
    index = {name: i for i, name in enumerate(version.class_names)}
    rows = (
        GroundTruth.objects.filter(project=version.project, needs_review=False)
        .order_by("item_id")
        .values_list("item_id", "item__file", "item__sha256", "label_class__name", "in_holdout")
    )
    return [
        (item_id, file, sha, index[name], in_holdout)
        for item_id, file, sha, name, in_holdout in rows
        if name in index
    ]


def _evidence(version: ModelVersion, rows) -> list[str]:
    trained = _trained_on(version)
    if trained is None:
        # Without the list, the labels that existed when training began trained it.
        started = version.training_run.started_at or version.training_run.created_at
        before = set(
            GroundTruth.objects.filter(
                project=version.project, created_at__lte=started
            ).values_list("item_id", flat=True)
        )
        trained = before
    out = []
    for item_id, _, _, _, in_holdout in rows:
        if in_holdout:
            out.append(EVIDENCE_HOLDOUT)
        elif item_id in trained:
            out.append(EVIDENCE_TRAINING)
        else:
            out.append(EVIDENCE_LABELED_SINCE)
    return out


def _probabilities(version: ModelVersion, rows) -> np.ndarray:
    """The version's calibrated probabilities for every row: its stored prediction where it
    scored the item in the pool, the network run now (in batches) for the others."""
    k = len(version.class_names)
    probs = np.zeros((len(rows), k), dtype=np.float64)
    stored = dict(
        Prediction.objects.filter(
            model_version=version, item_id__in=[r[0] for r in rows]
        ).values_list("item_id", "probs")
    )
    missing = []
    for position, row in enumerate(rows):
        p = stored.get(row[0])
        if p is not None and len(p) == k:
            probs[position] = p
        else:
            missing.append(position)
    if missing:
        from loupe.learning.data import item_tensors
        from loupe.learning.scoring import version_model, version_temperature
        from ml.calibration import apply_temperature
        from ml.scoring import score

        model = version_model(model_version=version)
        temperature = version_temperature(model_version=version)
        for start in range(0, len(missing), SCORE_BATCH):
            part = missing[start : start + SCORE_BATCH]
            x = item_tensors(
                [rows[i][1] for i in part],
                image_size=version.image_size,
                cache_keys=[rows[i][2] for i in part],
            )
            output = score(model, x, batch_size=SCORE_BATCH)
            probs[part] = apply_temperature(output.probs, temperature)
    return probs


def _suspects(version, rows, probs, evidence, side) -> tuple[list[dict], int, int]:
    """(suspects, items checked, suspects left out as too weak) on one side of the evidence."""
    from ml.label_errors import find_label_issues

    positions = np.array([i for i, e in enumerate(evidence) if e in side], dtype=np.int64)
    if not positions.size:
        return [], 0, 0
    labels = np.array([rows[i][3] for i in positions], dtype=np.int64)
    p = probs[positions]
    issues = find_label_issues(labels, p)
    strong = p[issues.indices, issues.suggested_labels] >= SUSPECT_MIN_CONFIDENCE
    kept = np.flatnonzero(strong)[:MAX_SUSPECTS]
    names = version.class_names
    out = []
    for index, score_, given, suggested in zip(
        issues.indices[kept].tolist(),
        issues.scores[kept].tolist(),
        issues.given_labels[kept].tolist(),
        issues.suggested_labels[kept].tolist(),
        strict=True,
    ):
        row = int(positions[index])
        top = int(np.argmax(probs[row]))
        out.append(
            {
                "item_id": rows[row][0],
                "given": names[given],
                "suggested": names[suggested],
                "predicted": names[top],
                "confidence": round(float(probs[row, top]), 4),
                "given_probability": round(float(probs[row, given]), 4),
                "score": round(float(score_), 4),
                "evidence": evidence[row],
            }
        )
    return out, int(positions.size), int((~strong).sum())


def label_suspects_scan(*, model_version: ModelVersion) -> dict:
    """Finds the labels `model_version` contradicts and stores them (see the module
    docstring); returns what it stored. Safe to run twice: a rerun writes the same file."""
    rows = _labeled_rows(model_version)
    evidence = _evidence(model_version, rows)
    probs = _probabilities(model_version, rows) if rows else np.zeros((0, 1))
    out_of_sample, n_out, weak_out = _suspects(model_version, rows, probs, evidence, OUT_OF_SAMPLE)
    in_sample, n_in, weak_in = _suspects(model_version, rows, probs, evidence, (EVIDENCE_TRAINING,))
    scan = {
        "version": model_version.version,
        "model_version_id": model_version.pk,
        "computed_at": timezone.now().isoformat(),
        "checked": {
            EVIDENCE_HOLDOUT: evidence.count(EVIDENCE_HOLDOUT),
            EVIDENCE_LABELED_SINCE: evidence.count(EVIDENCE_LABELED_SINCE),
            EVIDENCE_TRAINING: evidence.count(EVIDENCE_TRAINING),
        },
        "out_of_sample_items": n_out,
        "in_sample_items": n_in,
        # Contradicted, but with less than SUSPECT_MIN_CONFIDENCE for the other class.
        "weak": weak_out + weak_in,
        "suspects": out_of_sample + in_sample,
    }
    file_replace(name=scan_name(model_version), content=json.dumps(scan).encode())
    logger.info(
        "label scan of %s: %d suspects out of sample, %d in sample",
        model_version,
        len(out_of_sample),
        len(in_sample),
    )
    return scan


def label_suspects_scan_by_id(*, model_version_id: int) -> dict | None:
    version = ModelVersion.objects.select_related("project", "training_run").filter(
        pk=model_version_id
    )
    version = version.first()
    return label_suspects_scan(model_version=version) if version is not None else None


def label_suspects_read(*, model_version: ModelVersion) -> dict | None:
    """The stored scan of `model_version`, or None before its worker wrote it."""
    name = scan_name(model_version)
    try:
        with default_storage.open(name, "rb") as handle:
            return json.loads(handle.read())
    except (FileNotFoundError, OSError, ValueError):
        return None


def label_suspects_request(*, model_version: ModelVersion) -> bool:
    """Queues the scan of a version that has none yet (once per REQUEST_SECONDS); True when
    it queued one."""
    if default_storage.exists(scan_name(model_version)):
        return False
    if not cache.add(f"label-scan:{model_version.pk}", 1, timeout=REQUEST_SECONDS):
        return False
    jobs.enqueue(jobs.SCAN_LABELS, model_version_id=model_version.pk)
    return True


def latest_version(project: Project) -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(project=project)
        .select_related("project", "training_run")
        .order_by("-version")
        .first()
    )
