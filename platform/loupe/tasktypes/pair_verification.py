"""Pair verification: do two images show the same person? One item is a pair of images.

Each image is stored once (content-addressed); a pair item names its left image in `file`
and its right one in `extra_files`. The classes are fixed, `different` and `same` (the order
of the model's outputs); experts answer "same", "different" or "can't tell" in Label Studio,
where "can't tell" counts as having looked and carries no vote.

Where the pairs come from:
- a pair manifest (CSV or JSON Lines with `left`, `right` and an optional `label` of same or
  different): the pairs as listed;
- images grouped by identity (`root/<identity>/<image>`): labeled pairs made from them, the
  same-identity pairs and as many different-identity pairs, with the holdout drawn by
  identity so that no person is both trained on and measured on;
- images without an identity (files at the top of the folder): pool pairs of each image
  with the images that look most alike (8x8 thumbnails) and one at random;
- after every training, pairs mined from the new model's embedding (each image's nearest
  images, and its nearest in another predicted identity), the ones whose p(same) is least
  sure joining the pool (`pool_refresh`).

Training reads both images of each labeled pair; scoring writes one Prediction per pair
(p(same) in `probs`, the cosine distance in the artifact's extras); a pick's reason names
the distance and the threshold. Transitivity checks the labels: same(A, B), same(B, C) and
different(A, C) cannot all be right (`pair_contradictions`).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from loupe.bulk import db_value, insert_rows
from loupe.datasets import sources
from loupe.datasets.models import ImportKind, Item, ItemState, Split
from loupe.errors import ApplicationError
from loupe.labeling import ls_payloads
from loupe.labeling.holdout import HoldoutAssigner, holdout_coin
from loupe.labeling.models import GroundTruth
from loupe.learning.models import Prediction
from loupe.learning.selectors import PREDICTION_ROW_FIELDS, prediction_rows
from loupe.projects.models import LabelClass, Project
from loupe.runs import run_beat
from loupe.tasktypes.base import (
    Outcome,
    TaskType,
    TaskTypeImport,
    TrainingRow,
    Vote,
    imported_ground_truth_create,
    plurality,
    summary_figure,
    summary_interval,
)

logger = logging.getLogger(__name__)

PAIR_VERIFICATION = "pair_verification"
SAME, DIFFERENT = ls_payloads.PAIR_SAME, ls_payloads.PAIR_DIFFERENT
# How a manifest may write a pair's label.
LABEL_WORDS = {
    "same": SAME,
    "1": SAME,
    "true": SAME,
    "yes": SAME,
    "match": SAME,
    "different": DIFFERENT,
    "0": DIFFERENT,
    "false": DIFFERENT,
    "no": DIFFERENT,
    "non-match": DIFFERENT,
}
LEFT_KEYS, RIGHT_KEYS = ("left", "image_a", "a"), ("right", "image_b", "b")
# Labeled pairs made from an identity folder: each image with up to this many others of
# its identity, and as many different-identity pairs as same ones.
SAME_PAIRS_PER_IMAGE = 2
# Pool pairs of an image without identity: its most alike images, and random partners.
LOOKALIKE_PARTNERS = 3
RANDOM_PARTNERS = 1
THUMB_PX = 8
# Mined after a training: each image's nearest images and nearest in another predicted
# identity; at most this many batches' worth of the least sure join the pool.
MINED_NEIGHBOURS, MINED_ACROSS, MINED_BATCHES = 5, 2, 5
# Implied pairs kept out of mining at most (a sample beyond: a large identity import
# implies millions of "different" pairs).
IMPLIED_LIMIT = 200_000
IMPORT_BEAT_EVERY = 200
# The evidence of a label suspect found by transitivity.
TRANSITIVITY = "transitivity"


def pair_sha(left: str, right: str) -> str:
    """The identity of a pair: the hash of its two storage names, in either order."""
    a, b = sorted((left, right))
    return hashlib.sha256(f"pair|{a}|{b}".encode()).hexdigest()


def member_key(file_name: str) -> str:
    """An image's content hash, read from its content-addressed storage name."""
    return Path(file_name).stem


class PairVerification(TaskType):
    name = PAIR_VERIFICATION
    title = "Pair verification (same or different)"
    fixed_classes = (DIFFERENT, SAME)
    model_kind = "siamese_cnn"
    explains = False

    # --- Label Studio ------------------------------------------------------------------------

    def label_config(self, *, classes, guidelines, image_px):
        return ls_payloads.pair_labeling_config(guidelines, image_px=image_px)

    def task_data(self, *, file, extra_files=()):
        if not extra_files:
            raise ApplicationError(f"The pair item of '{file}' has no second image.")
        return {
            ls_payloads.IMAGE_FIELD: ls_payloads.local_file_url(file),
            ls_payloads.SECOND_IMAGE_FIELD: ls_payloads.local_file_url(extra_files[0]),
        }

    def pre_annotation(self, *, predicted_class, confidence):
        """The model's answer, scored by its p(same) (what Label Studio sorts tasks by)."""
        if predicted_class not in (SAME, DIFFERENT):
            return None
        confidence = float(confidence or 0.5)
        p_same = confidence if predicted_class == SAME else 1.0 - confidence
        return ls_payloads.PushPrediction(
            result=ls_payloads.choices_result([predicted_class]),
            score=round(p_same, 4),
            model_version=ls_payloads.PREDICTION_MODEL_VERSION,
        )

    def read_answer(self, result):
        return ls_payloads.chosen_classes(result)

    def decide(self, votes: Sequence[Vote], *, overlap: int) -> Outcome:
        """The plurality of same / different once `overlap` annotators answered; "can't
        tell" (no class) counts toward the overlap and votes for nothing, so a pair every
        annotator could not tell is skipped rather than waiting forever."""
        unsure = [
            Vote(v.annotator, v.label, cancelled=v.cancelled or v.label is None) for v in votes
        ]
        return plurality(unsure, overlap=overlap)

    # --- import ------------------------------------------------------------------------------

    def import_items(self, *, job, path, accept, progress) -> bool:
        PairImport(job, path, accept, progress).run()
        return True

    # --- learning ----------------------------------------------------------------------------

    def training_rows(self, *, project, holdout):
        items = Item.objects.filter(
            project=project, ground_truth__isnull=False, ground_truth__needs_review=False
        )
        items = items.filter(split=Split.HOLDOUT) if holdout else items.exclude(split=Split.HOLDOUT)
        rows = items.order_by("id").values_list(
            "id", "file", "ground_truth__label_class_id", "sha256", "extra_files"
        )
        return [
            TrainingRow(pk, file, label, sha, None, tuple(extra or ()))
            for pk, file, label, sha, extra in rows
        ]

    def training_targets(self, rows, *, classes) -> np.ndarray:
        """1 for same, 0 for different."""
        same = {c.pk for c in classes if c.name == SAME}
        return np.array([int(r.label_class_id in same) for r in rows], dtype=np.int64)

    def item_inputs(self, *, files, extra_files, cache_keys, image_size, progress=None):
        """Pairs ``(n, 2, 3, size, size)``; an image in several pairs is decoded once."""
        from loupe.learning.data import item_tensors

        members = [(f, (extra or (None,))[0]) for f, extra in zip(files, extra_files, strict=True)]
        if any(right is None for _, right in members):
            raise ApplicationError("A pair item has no second image.")
        distinct = list(dict.fromkeys(name for pair in members for name in pair))
        position = {name: i for i, name in enumerate(distinct)}
        pixels = item_tensors(
            distinct,
            image_size=image_size,
            progress=progress,
            cache_keys=[member_key(name) for name in distinct],
        )
        index = np.array([[position[a], position[b]] for a, b in members], dtype=np.int64)
        if not len(index):
            return pixels.new_zeros((0, 2, *pixels.shape[1:]))
        return pixels[index.reshape(-1)].view(len(index), 2, *pixels.shape[1:])

    def holdout_report(self, *, model, x_train, y_train, x_holdout, y_holdout, names):
        """ROC AUC, EER and TAR at FAR 1% and 0.1% of p(same) on the holdout pairs with
        bootstrap intervals, the calibrated threshold, and beside them a baseline without
        learning: the cosine distance of 8x8 pixel thumbnails."""
        import torch.nn.functional as F

        from ml.pair_metrics import pair_metrics
        from ml.tasks.pair_verification import distance_threshold

        spec = self.ml_spec()
        predictions = spec.predict(model, x_holdout)
        n_resamples = settings.LOUPE_BOOTSTRAP_SAMPLES
        metrics = pair_metrics(
            y_holdout, predictions.scores, threshold=0.5, n_resamples=n_resamples
        )
        same = int(np.sum(y_holdout))
        shared, images = _images_shared(x_train, x_holdout)
        metrics["holdout"] = (
            f"fixed project holdout: {len(y_holdout)} pairs, {same} same and"
            f" {len(y_holdout) - same} different, of {images} images"
            + (
                f" ({shared} of which also appear in training pairs: seen faces, not only"
                " new people)"
                if shared
                else " none of which appears in a training pair"
            )
        )
        metrics["holdout_images"], metrics["holdout_images_in_training"] = images, shared
        metrics["interval_level"] = 0.95
        metrics["threshold_distance"] = round(float(distance_threshold(model)), 4)
        metrics["balanced_accuracy"] = _balanced_accuracy(y_holdout, predictions.scores)
        pooled = F.adaptive_avg_pool2d(x_holdout.flatten(0, 1), THUMB_PX).flatten(1)
        thumbs = F.normalize(pooled - pooled.mean(dim=1, keepdim=True), dim=1)
        thumbs = thumbs.view(len(x_holdout), 2, -1).numpy()
        closeness = (thumbs[:, 0] * thumbs[:, 1]).sum(axis=1)
        baseline = pair_metrics(y_holdout, closeness, n_resamples=n_resamples)
        baseline["name"] = "cosine similarity of 8x8 pixel thumbnails, no learning"
        return metrics, baseline

    def holdout_summary(self, metrics, baseline):
        figure, interval = summary_figure, summary_interval(metrics, "roc_auc")
        return (
            f"holdout ROC AUC {figure(metrics.get('roc_auc'))}{interval}"
            f" (thumbnail baseline {figure(baseline.get('roc_auc'))}),"
            f" EER {figure(metrics.get('eer'))}, TAR at FAR 1%"
            f" {figure(metrics.get('tar_at_far_1pct'))}, on {metrics.get('n_pairs', 0)} pairs"
        )

    def predictions_insert(self, *, version, run, item_ids, probs, scored=None):
        """One Prediction per pair: same when p(same) >= 0.5, its confidence, uncertainty
        1 - |2p - 1| (1 at p = 0.5), and (p(different), p(same))."""
        p = np.asarray(probs, dtype=np.float64)[:, -1]
        classes = dict(LabelClass.objects.filter(project=run.project).values_list("name", "pk"))
        created_at = db_value(Prediction, "created_at", timezone.now())
        rows = [
            (
                item,
                version.pk,
                run.pk,
                classes.get(SAME if ps >= 0.5 else DIFFERENT),
                max(ps, 1.0 - ps),
                1.0 - abs(2.0 * ps - 1.0),
                db_value(Prediction, "probs", [round(1.0 - ps, 5), round(ps, 5)]),
                created_at,
            )
            for item, ps in zip(item_ids.tolist(), p.tolist(), strict=True)
        ]
        insert_rows(
            Prediction,
            (
                "item",
                "model_version",
                "scoring_run",
                "predicted_class",
                "confidence",
                "uncertainty",
                "probs",
                "created_at",
            ),
            rows,
            ignore_conflicts=True,
        )

    def pool_refresh(self, *, project, version, model) -> int:
        """Pairs mined from the new version's embedding of every image of the project, at
        most MINED_BATCHES batches' worth: half the most likely same, half the least sure
        (what the default strategy asks for); pairs that exist already (labeled or not)
        are left out. Returns how many joined the pool."""
        from loupe.learning.data import item_tensors
        from ml.strategies.pairs import mine_candidate_pairs, p_same, pair_uncertainty

        rows = list(Item.objects.filter(project=project).values_list("file", "extra_files"))
        members = [(f, (extra or (None,))[0]) for f, extra in rows]
        images = sorted({name for pair in members for name in pair if name})
        if len(images) < 3:
            return 0
        index = {name: i for i, name in enumerate(images)}
        existing = np.array(
            [[index[a], index[b]] for a, b in members if a in index and b in index],
            dtype=np.int64,
        ).reshape(-1, 2)
        # Pairs whose answer the labels imply by transitivity are known already: no label
        # is spent on them (measured: +0.03 mean AUC over the budgets in the simulator).
        existing = np.concatenate([existing, _implied_by_labels(project, index)])
        x = item_tensors(
            images,
            image_size=version.image_size,
            cache_keys=[member_key(name) for name in images],
        )
        embeddings = self.ml_spec().embed_images(model, x)
        pairs, distance, reasons = mine_candidate_pairs(
            embeddings,
            neighbours=MINED_NEIGHBOURS,
            across=MINED_ACROSS,
            exclude=existing,
            seed=version.version,
        )
        if not len(pairs):
            return 0
        calibration = tuple(float(v) for v in model.calibration.detach().cpu())
        p = p_same(distance, calibration)
        # Half the most likely same (the rare answer), half the least sure.
        keep = MINED_BATCHES * project.batch_size
        likely = np.argsort(-p, kind="stable")[: keep // 2]
        unsure = np.argsort(-pair_uncertainty(p), kind="stable")
        unsure = unsure[~np.isin(unsure, likely)][: keep - len(likely)]
        order = np.concatenate([likely, unsure])
        info = _image_info([images[i] for i in np.unique(pairs[order])])
        mined = [
            _Pair(
                left=images[pairs[j, 0]],
                right=images[pairs[j, 1]],
                metadata={
                    "mined": str(reasons[j]),
                    "mined_by_version": version.version,
                    "distance": round(float(distance[j]), 4),
                },
            )
            for j in order.tolist()
        ]
        with transaction.atomic():
            Project.objects.select_for_update().filter(pk=project.pk).first()
            inserted = _pairs_insert(
                project=project, job=None, pairs=mined, info=info, source="mined", labels={}
            )
        return inserted

    def pick_reason(self, probs, names, *, extras, version, control, arm):
        p = float(probs[-1])
        distance = extras.get("distance")
        threshold = (version.metrics or {}).get("threshold_distance")
        where = ""
        if distance is not None and threshold is not None:
            where = f"cosine distance {float(distance):.2f}, threshold {float(threshold):.2f}: "
        if control:
            return f"picked at random, to check the model on ordinary pairs; {where}p(same) {p:.0%}"
        if p >= 0.8:
            return (
                f"the model thinks these may show the same person ({where}p(same) {p:.0%}):"
                " 'same' is the rare answer, the one it learns most from"
            )
        side = "near" if abs(p - 0.5) < 0.3 else "away from"
        return (
            f"the model is unsure whether these show the same person: {where}p(same) {p:.0%},"
            f" {side} the threshold"
        )

    def label_suspects(self, *, project):
        """Every label of a contradiction found by transitivity (`pair_contradictions`),
        each once, the shortest chains first: one of its labels is wrong, and the expert
        who sees them again decides which."""
        suspects: dict[int, dict] = {}
        found = sorted(pair_contradictions(project=project), key=lambda c: len(c["same_items"]))
        for contradiction in found:
            chain = contradiction["same_items"]
            different = contradiction["different_item"]
            links = ", ".join(f"#{i}" for i in chain)
            for item_id, given in ((different, DIFFERENT), *((i, SAME) for i in chain)):
                if item_id in suspects:
                    continue
                if given == DIFFERENT:
                    why = (
                        f"labeled different, but a chain of {len(chain)} 'same' labels"
                        f" ({links}) joins its two images"
                    )
                else:
                    why = (
                        f"labeled same, in a chain of 'same' labels ({links}) that joins the"
                        f" images of pair #{different}, labeled different"
                    )
                suspects[item_id] = {
                    "item_id": item_id,
                    "given": given,
                    "suggested": SAME if given == DIFFERENT else DIFFERENT,
                    "predicted": SAME if given == DIFFERENT else DIFFERENT,
                    "confidence": None,
                    "given_probability": None,
                    "score": round(1.0 / len(chain), 4),
                    "evidence": TRANSITIVITY,
                    "why": why + ": one of these labels is wrong.",
                }
        return list(suspects.values())

    # --- exports -----------------------------------------------------------------------------

    ground_truth_fields = (
        "item_id",
        "left",
        "right",
        "left_name",
        "right_name",
        "label",
        "split",
        "source",
        "decided_by",
        "num_annotators",
        "agreement",
    )
    prediction_fields = PREDICTION_ROW_FIELDS

    def ground_truth_rows(self, *, project, split=None):
        truths = GroundTruth.objects.filter(project=project, needs_review=False)
        if split:
            truths = truths.filter(item__split=split)
        rows = truths.order_by("item_id").values_list(
            "item_id",
            "item__file",
            "item__extra_files",
            "item__metadata",
            "label_class__name",
            "item__split",
            "item__source",
            "decided_by",
            "num_annotators",
            "agreement",
        )
        for item_id, left, extra, metadata, *rest in rows.iterator(chunk_size=2000):
            names = (metadata or {}).get("pair") or ["", ""]
            right = (extra or [""])[0]
            yield dict(
                zip(
                    self.ground_truth_fields,
                    (item_id, left, right, names[0], names[1], *rest),
                    strict=True,
                )
            )

    def prediction_rows(self, *, model_version):
        return prediction_rows(model_version=model_version)


def _images_shared(x_train, x_holdout) -> tuple[int, int]:
    """(holdout images that also appear in a training pair, distinct holdout images), an
    image known by its pixels."""

    def keys(x) -> set[bytes]:
        flat = x.flatten(0, 1).contiguous().numpy() if len(x) else np.empty((0,))
        return {hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in flat}

    held = keys(x_holdout)
    return len(held & keys(x_train)), len(held)


def _implied_by_labels(project, index: dict[str, int]) -> np.ndarray:
    """Image-index pairs ``(m, 2)`` the project's usable pair labels imply (labeled ones
    included), at most IMPLIED_LIMIT of them."""
    from ml.pair_labels import implied_pairs

    rows = GroundTruth.objects.filter(project=project, needs_review=False).values_list(
        "item__file", "item__extra_files", "label_class__name"
    )
    pairs, same = [], []
    for left, extra, label in rows:
        right = (extra or [None])[0]
        if left in index and right in index:
            pairs.append((index[left], index[right]))
            same.append(label == SAME)
    if not pairs:
        return np.empty((0, 2), np.int64)
    implied, _ = implied_pairs(np.array(pairs), np.array(same), max_pairs=IMPLIED_LIMIT)
    return np.asarray(implied, dtype=np.int64).reshape(-1, 2)


def _balanced_accuracy(y, p_same) -> float | None:
    y = np.asarray(y).astype(bool)
    said = np.asarray(p_same) >= 0.5
    if y.all() or (~y).all():
        return None
    return round(float(((said & y).sum() / y.sum() + (~said & ~y).sum() / (~y).sum()) / 2), 4)


# --- import ----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Pair:
    left: str
    right: str
    label: str | None = None  # SAME, DIFFERENT or None (pool)
    split: str | None = None  # decided at import for identity pairs
    metadata: dict = dataclasses.field(default_factory=dict)


def _image_info(names: Sequence[str]) -> dict[str, dict]:
    """Size, format and name of stored images: from an item whose left image it is, else
    read from the stored file's header."""
    from PIL import Image

    info: dict[str, dict] = {}
    rows = Item.objects.filter(file__in=list(names)).values_list(
        "file", "width", "height", "image_format", "metadata"
    )
    for file, width, height, image_format, metadata in rows:
        info.setdefault(
            file,
            {
                "width": width,
                "height": height,
                "image_format": image_format,
                "name": ((metadata or {}).get("pair") or [file])[0],
            },
        )
    for name in names:
        if name in info:
            continue
        try:
            with default_storage.open(name, "rb") as handle, Image.open(handle) as image:
                info[name] = {"width": image.width, "height": image.height,
                              "image_format": image.format or ""}  # fmt: skip
        except OSError:
            info[name] = {}
    for name in names:
        try:
            info[name]["size_bytes"] = default_storage.size(name)
        except OSError:
            info[name]["size_bytes"] = 0
    return info


_ITEM_COLUMNS = (
    "project",
    "file",
    "extra_files",
    "original_name",
    "sha256",
    "size_bytes",
    "width",
    "height",
    "image_format",
    "metadata",
    "source",
    "split",
    "state",
    "import_job",
    "created_at",
    "updated_at",
)


def _pairs_insert(*, project, job, pairs: list[_Pair], info: dict, source: str, labels) -> int:
    """Inserts the pairs not in the project yet (and their imported ground truth); returns
    how many. `labels` maps SAME / DIFFERENT to class ids. Inside the caller's transaction."""
    if not pairs:
        return 0
    keyed = {}
    for pair in pairs:
        keyed.setdefault(pair_sha(pair.left, pair.right), pair)
    existing = set(
        Item.objects.filter(project=project, sha256__in=list(keyed)).values_list(
            "sha256", flat=True
        )
    )
    fresh = [(sha, pair) for sha, pair in keyed.items() if sha not in existing]
    now = db_value(Item, "created_at", timezone.now())
    holdout = HoldoutAssigner(project=project, fraction=job.holdout_fraction if job else None)
    rows, truths = [], []
    for sha, pair in fresh:
        left, right = info.get(pair.left, {}), info.get(pair.right, {})
        split, state = Split.POOL, ItemState.UNLABELED
        if pair.label is not None:
            class_id = labels[pair.label]
            split = pair.split or holdout.split_for(sha256=sha, class_id=class_id)
            state = ItemState.LABELED
            truths.append((sha, class_id, None, split))
        names = [left.get("name", pair.left), right.get("name", pair.right)]
        rows.append(
            (
                project.pk,
                pair.left,
                db_value(Item, "extra_files", [pair.right]),
                f"{names[0]} | {names[1]}"[:500],
                sha,
                int(left.get("size_bytes", 0)) + int(right.get("size_bytes", 0)),
                int(left.get("width", 0)),
                int(left.get("height", 0)),
                left.get("image_format", ""),
                db_value(Item, "metadata", {"pair": names, **pair.metadata}),
                source[:100],
                split,
                state,
                job.pk if job else None,
                now,
                now,
            )
        )
    insert_rows(Item, _ITEM_COLUMNS, rows)
    imported_ground_truth_create(project=project, truths=truths)
    if job is not None:
        job.labeled += len(truths)
    return len(fresh)


class PairImport(TaskTypeImport):
    """One import job of a pair project: stores every image once, then inserts the pairs
    the source gives (manifest), or makes (identity folders, images without identity).
    Every unreadable image and every bad manifest row is a rejection with its reason; a
    pair whose image was rejected is rejected too, naming which."""

    beat_every = IMPORT_BEAT_EVERY

    def __init__(self, job, path: Path, accept, progress):
        super().__init__(job, accept, progress)
        self.path = path
        self.images: dict[str, dict] = {}  # storage name -> size, format, name, identity
        self.by_source: dict[str, str | None] = {}  # source path -> storage name (None: bad)
        self.labels = dict(
            LabelClass.objects.filter(project=self.project).values_list("name", "pk")
        )
        missing = {SAME, DIFFERENT} - set(self.labels)
        if missing:
            raise ApplicationError(
                f"A pair project needs the classes {SAME} and {DIFFERENT}; it lacks"
                f" {', '.join(sorted(missing))}."
            )

    def run(self) -> None:
        if self.job.kind == ImportKind.MANIFEST:
            pairs = self._manifest_pairs()
        else:
            pairs = self._folder_pairs()
        with transaction.atomic():
            Project.objects.select_for_update().filter(pk=self.project.pk).first()
            inserted = _pairs_insert(
                project=self.project,
                job=self.job,
                pairs=pairs,
                info=self.images,
                source=self.job.source_tag,
                labels=self.labels,
            )
            # `_pairs_insert` counts the labeled pairs on the job itself.
            self.record(offered=len(pairs), inserted=inserted)
        if self.progress:
            self.progress(self.job)

    # --- images ------------------------------------------------------------------------------

    def _store(self, entry: sources.SourceEntry, identity: str | None) -> str | None:
        """The storage name of an entry's image, stored once; None when it is rejected."""
        accepted, reason = self.accept(dataclasses.replace(entry, label=None))
        if reason:
            self.reject(entry.name, reason)
            return None
        known = self.images.get(accepted.file_name)
        if known is not None:
            if identity is not None and known["identity"] not in (None, identity):
                self.reject(
                    entry.name,
                    f"the same image is already under identity '{known['identity']}'",
                )
                return None
            self.job.duplicates += 1
            return accepted.file_name
        self.images[accepted.file_name] = {
            "name": accepted.original_name,
            "identity": identity,
            "width": accepted.width,
            "height": accepted.height,
            "image_format": accepted.image_format,
            "size_bytes": accepted.size_bytes,
        }
        return accepted.file_name

    def _folder_pairs(self) -> list[_Pair]:
        refused = [str(settings.LOUPE_UPLOAD_DIR), str(settings.MEDIA_ROOT)]
        if self.job.kind == ImportKind.FOLDER:
            total = sources.count_folder(self.path, refused=refused)
            self.job.total = total
            run_beat(self.job, total=total)
            for entry in sources.iter_folder(self.path, refused=refused):
                self.count()
                self._store(entry, entry.label)
        else:
            with sources.open_zip(self.path) as archive:
                self.job.total = sources.count_zip(self.path)
                run_beat(self.job, total=self.job.total)
                for entry in sources.iter_zip(archive):
                    self.count()
                    self._store(entry, entry.label)
        return self._identity_pairs() + self._pool_pairs()

    def _identity_pairs(self) -> list[_Pair]:
        """Same pairs within each identity and as many different ones, on each side of an
        identity holdout (no person in both train and holdout)."""
        by_identity: dict[str, list[str]] = {}
        for name, image in sorted(self.images.items()):
            if image["identity"] is not None:
                by_identity.setdefault(image["identity"], []).append(name)
        if not by_identity:
            return []
        held = self._holdout_identities(sorted(by_identity))
        rng = np.random.default_rng(0)
        pairs: list[_Pair] = []
        for side in (Split.TRAIN, Split.HOLDOUT):
            holdout_side = side == Split.HOLDOUT
            groups = {k: v for k, v in by_identity.items() if (k in held) == holdout_side}
            same = []
            for members in groups.values():
                for i in range(len(members)):
                    for step in range(1, SAME_PAIRS_PER_IMAGE + 1):
                        j = i + step
                        if j < len(members) and not (len(members) == 2 and step > 1):
                            same.append((members[i], members[j]))
            everyone = [(name, k) for k, v in groups.items() for name in v]
            different: set[tuple[str, str]] = set()
            attempts = 0
            while len(groups) > 1 and len(different) < len(same) and attempts < 20 * len(same) + 20:
                attempts += 1
                a, b = rng.choice(len(everyone), 2, replace=False)
                if everyone[a][1] != everyone[b][1]:
                    different.add(tuple(sorted((everyone[a][0], everyone[b][0]))))
            for left, right in same:
                pairs.append(_Pair(left, right, SAME, split=side, metadata=self._ids(left, right)))
            for left, right in sorted(different):
                pairs.append(
                    _Pair(left, right, DIFFERENT, split=side, metadata=self._ids(left, right))
                )
        return pairs

    def _ids(self, left: str, right: str) -> dict:
        return {"identities": [self.images[left]["identity"], self.images[right]["identity"]]}

    def _holdout_identities(self, identities: list[str]) -> set[str]:
        """Identities whose hash coin falls under the holdout fraction; with five or more
        identities, at least two are held out (a holdout of one person has no different
        pair) and at least two train."""
        fraction = self.job.holdout_fraction
        if fraction <= 0 or len(identities) < 5:
            return set()
        coin = {k: holdout_coin(hashlib.sha256(k.encode()).hexdigest()) for k in identities}
        held = {k for k in identities if coin[k] < fraction}
        by_coin = sorted(identities, key=lambda k: coin[k])
        held |= set(by_coin[:2])
        while len(identities) - len(held) < 2:
            held.discard(max(held, key=lambda k: coin[k]))
        return held

    def _pool_pairs(self) -> list[_Pair]:
        """Each image without identity with its most alike images (cosine of 8x8
        thumbnails, any image of the import) and a random partner: unlabeled pool pairs."""
        names = sorted(self.images)
        flat = [i for i, name in enumerate(names) if self.images[name]["identity"] is None]
        if not flat or len(names) < 2:
            return []
        thumbs = _thumbnails(names)
        rng = np.random.default_rng(1)
        found: set[tuple[int, int]] = set()
        block = 512
        for start in range(0, len(flat), block):
            rows = np.array(flat[start : start + block])
            sims = thumbs[rows] @ thumbs.T
            sims[np.arange(len(rows)), rows] = -np.inf
            k = min(LOOKALIKE_PARTNERS, len(names) - 1)
            near = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k else np.empty((len(rows), 0))
            for i, partners in zip(rows.tolist(), near.tolist(), strict=True):
                for j in partners:
                    found.add((min(i, j), max(i, j)))
                for j in rng.choice(len(names), RANDOM_PARTNERS + 1, replace=False).tolist():
                    if j != i:
                        found.add((min(i, j), max(i, j)))
                        break
        return [_Pair(names[a], names[b]) for a, b in sorted(found)]

    # --- manifests ---------------------------------------------------------------------------

    def _manifest_pairs(self) -> list[_Pair]:
        rows = list(_pair_manifest_rows(self.path))
        self.job.total = len(rows)
        run_beat(self.job, total=self.job.total)
        roots = settings.LOUPE_IMPORT_ROOTS
        refused = [str(settings.LOUPE_UPLOAD_DIR), str(settings.MEDIA_ROOT)]
        pairs: list[_Pair] = []
        for line_no, row in rows:
            self.count()
            where = f"{self.path.name}:{line_no}"
            if isinstance(row, str):
                self.reject(where, row)
                continue
            left_raw = next((str(row[k]) for k in LEFT_KEYS if row.get(k)), None)
            right_raw = next((str(row[k]) for k in RIGHT_KEYS if row.get(k)), None)
            if not left_raw or not right_raw:
                self.reject(where, "row needs a left and a right image path")
                continue
            raw_label = str(row.get("label", "") or "").strip().lower()
            label = LABEL_WORDS.get(raw_label) if raw_label else None
            if raw_label and label is None:
                self.reject(where, f"unknown label '{raw_label}': write same or different")
                continue
            stored = []
            for raw in (left_raw, right_raw):
                if raw not in self.by_source:
                    self.by_source[raw] = self._manifest_image(raw, roots, refused)
                stored.append(self.by_source[raw])
            if stored[0] is None or stored[1] is None:
                bad = [s for s, v in zip(("left", "right"), stored, strict=True) if v is None]
                self.reject(where, f"the {' and '.join(bad)} image was rejected")
                continue
            if stored[0] == stored[1]:
                self.reject(where, "a pair needs two different images")
                continue
            metadata = {
                k: v for k, v in row.items() if k not in (*LEFT_KEYS, *RIGHT_KEYS, "label") and v
            }
            pairs.append(_Pair(stored[0], stored[1], label, metadata=metadata))
        return pairs

    def _manifest_image(self, raw: str, roots, refused) -> str | None:
        target = Path(raw) if os.path.isabs(raw) else self.path.parent / raw
        try:
            real = sources.resolve_allowed(target, roots, refused=refused)
        except ApplicationError:
            self.reject(raw, "path outside the allowed import folders")
            return None
        if not real.is_file():
            self.reject(raw, "file not found or unreadable")
            return None
        entry = sources.SourceEntry(name=raw, opener=functools.partial(open, real, "rb"))
        return self._store(entry, None)


def _pair_manifest_rows(path: Path):
    """(line number, row dict or problem) of a CSV (with a header) or JSON Lines manifest."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ApplicationError(f"Cannot read manifest '{path.name}': {exc.strerror}") from exc
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = set(reader.fieldnames or ())
        if not header & set(LEFT_KEYS) or not header & set(RIGHT_KEYS):
            raise ApplicationError(
                f"Pair manifest '{path.name}' needs a header with left and right columns.",
                extra={"columns": ["left", "right", "label (optional: same or different)"]},
            )
        try:
            for row in reader:
                yield reader.line_num, {k: v for k, v in row.items() if k is not None}
        except csv.Error as exc:
            yield reader.line_num, f"unreadable CSV: {exc}"
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield line_no, f"not JSON: {exc.msg}"
            continue
        yield line_no, row if isinstance(row, dict) else "a row must be a JSON object"


def _thumbnails(names: Sequence[str]) -> np.ndarray:
    """Unit-length 8x8 grey thumbnails of stored images (centred), one row per image."""
    from PIL import Image

    out = np.zeros((len(names), THUMB_PX * THUMB_PX), dtype=np.float32)
    for i, name in enumerate(names):
        try:
            with default_storage.open(name, "rb") as handle, Image.open(handle) as image:
                grey = image.convert("L").resize((THUMB_PX, THUMB_PX), Image.Resampling.BOX)
                out[i] = np.asarray(grey, dtype=np.float32).ravel()
        except OSError as exc:  # stored and decoded at import: only a vanished file lands here
            logger.warning("no thumbnail of %s: %s", name, exc)
    out -= out.mean(axis=1, keepdims=True)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)
    return out


def pair_contradictions(*, project) -> list[dict]:
    """The label-error suspects of a pair project by transitivity: every "different"
    label whose two images a chain of "same" labels joins, with the labels of that chain
    (`ml.pair_labels.transitivity_contradictions`); item ids, not positions."""
    from ml.pair_labels import transitivity_contradictions

    rows = list(
        GroundTruth.objects.filter(project=project, needs_review=False).values_list(
            "item_id", "item__file", "item__extra_files", "label_class__name"
        )
    )
    rows = [r for r in rows if r[2]]
    if not rows:
        return []
    images = sorted({name for r in rows for name in (r[1], r[2][0])})
    index = {name: i for i, name in enumerate(images)}
    pairs = np.array([[index[r[1]], index[r[2][0]]] for r in rows], dtype=np.int64)
    same = np.array([r[3] == SAME for r in rows])
    out = []
    for found in transitivity_contradictions(pairs, same):
        out.append(
            {
                "different_item": rows[found["different_label"]][0],
                "same_items": [rows[j][0] for j in found["same_labels"]],
                "images": [images[i] for i in found["same_chain"]],
            }
        )
    return out
