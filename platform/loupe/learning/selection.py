"""Selection: the project's strategy over the latest scores picks the next batch, with a
random control slice, and records why each item was picked."""

import logging

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max

from loupe.datasets.models import Item, ItemState, Split
from loupe.errors import ApplicationError
from loupe.labeling.selectors import ground_truth_counts
from loupe.learning.models import ScoringRun, SelectionItem, SelectionRound
from loupe.learning.pick_history import pick_history, random_picks_labeled
from loupe.learning.scoring import scoring_arrays
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes, strategy_name
from loupe.tasktypes import task_type_of
from ml.artifacts import load

logger = logging.getLogger(__name__)

COLD_START = "cold_start"


def _class_counts(project: Project, classes) -> np.ndarray:
    """Labels per class (train and holdout; ties waiting for review are no label yet)."""
    truth = ground_truth_counts(project)
    return np.array(
        [truth[c.pk]["train"] + truth[c.pk]["holdout"] for c in classes], dtype=np.int64
    )


@transaction.atomic
def _labeled_embeddings(version, taken: np.ndarray) -> np.ndarray | None:
    """What diversity should stay away from: the items the version trained on, and the
    scored items taken since (labeled, queued or in annotation), in the version's space."""
    parts = [taken] if len(taken) else []
    if version.train_embeddings:
        try:
            with default_storage.open(version.train_embeddings.name, "rb") as handle:
                parts.append(load(handle, require=("embeddings",)).embeddings)
        except (OSError, KeyError, ValueError) as exc:
            # Selection still works without them, only less aware of the labeled set.
            logger.warning("training embeddings of v%s unreadable: %s", version.version, exc)
    parts = [p for p in parts if p.ndim == 2 and p.shape[1] == taken.shape[1]]
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else None


# Below this many training labels a model's guesses are rough, and the experts are told so.
EARLY_MODEL_LABELS = 100


# A class with fewer labels than this is named as rare in a pick's reason.
RARE_CLASS_LABELS = 20


def pick_reason(
    p: np.ndarray,
    names: list[str],
    *,
    control: bool,
    labels_used: int,
    class_counts: dict[str, int] | None = None,
    arm: str = "",
) -> str:
    """Why an item was picked, in words an annotator reads: what the model hesitates between,
    that the model sees a class with few labels, or that the pick is a random control; and
    whether the model is still an early one."""
    order = np.argsort(p)[::-1]
    first = f"{names[order[0]]} ({p[order[0]]:.0%})"
    second = f"{names[order[1]]} ({p[order[1]]:.0%})" if len(order) > 1 else ""
    margin = p[order[0]] - p[order[1]] if len(order) > 1 else 1.0
    if control:
        reason = f"picked at random, to check the model on ordinary items; it says {first}"
    elif arm == "random":
        reason = f"picked at random, to explore what the model has not been asked; it says {first}"
    elif arm == "discovery":
        reason = (
            f"from a group of similar images none of which is labeled yet, unlike those"
            f" labeled so far; the model says {first}"
        )
    elif margin < 0.3 and second:
        reason = f"the model hesitates between {first} and {second}"
    elif p[order[0]] < 0.6:
        reason = f"the model is unsure; its best guess is {first}"
    elif class_counts is not None and class_counts.get(names[order[0]], 0) < RARE_CLASS_LABELS:
        count = class_counts.get(names[order[0]], 0)
        reason = f"the model says {first}, a class with only {count} labels so far"
    else:
        reason = f"unlike the items labeled so far; the model says {first}"
    if labels_used < EARLY_MODEL_LABELS:
        reason += f" (an early model, trained on {labels_used} labels: its guesses are rough)"
    return reason


def _cold_start_sample(project: Project, rows: list, seed: int):
    """(positions, appearance) for a cold start: at most LOUPE_COLD_START_SAMPLE pool items
    drawn at random, and their appearance (colour and texture on an 8x8 grid, from pixels
    that scoring will reuse through the pixel cache). Appearance is None when it cannot be
    read; the cold start then picks at random within each stratum."""
    import torch.nn.functional as F

    from loupe.learning.data import item_tensors

    limit = settings.LOUPE_COLD_START_SAMPLE
    positions = np.arange(len(rows))
    if len(rows) > limit:
        positions = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
    if len(positions) == 0:
        return positions, None
    ids = [rows[i][0] for i in positions]
    stored = {
        pk: (name, sha)
        for pk, name, sha in Item.objects.filter(pk__in=ids).values_list("id", "file", "sha256")
    }
    try:
        pixels = item_tensors(
            [stored[i][0] for i in ids],
            image_size=project.image_size,
            cache_keys=[stored[i][1] for i in ids],
        )
    except (OSError, ValueError) as exc:
        logger.warning("cold start without appearance: %s", exc)
        return positions, None
    return positions, F.adaptive_avg_pool2d(pixels, 8).flatten(1).numpy()


def selection_round_create(
    *, project: Project, scoring_run: ScoringRun | None = None, batch_size: int | None = None
) -> SelectionRound:
    """Picks the next batch among unlabeled pool items (never one already queued or in
    annotation), marks them queued and records the round. Without scores, a cold start
    stratified by source and camera."""
    from ml.strategies import available, cold_start, get_strategy, select_batch

    batch_size = batch_size or project.batch_size
    number = (
        SelectionRound.objects.select_for_update()
        .filter(project=project)
        .aggregate(n=Max("number"))["n"]
        or 0
    ) + 1
    seed = number
    classes = project_classes(project=project)
    candidates = Item.objects.filter(project=project, split=Split.POOL, state=ItemState.UNLABELED)
    picks: list[dict] = []
    mix: dict = {}
    if scoring_run is None:
        rows = list(candidates.order_by("id").values_list("id", "source", "metadata"))
        pool_size = len(rows)
        positions, appearance = _cold_start_sample(project, rows, seed)
        rows = [rows[i] for i in positions]
        strata = np.array([f"{r[1]}|{(r[2] or {}).get('camera', '')}" for r in rows])
        chosen = cold_start(
            len(rows),
            batch_size,
            embeddings=appearance,
            strata=strata if len(rows) else None,
            method="stratified_typicality" if appearance is not None else "stratified",
            seed=seed,
        )
        name = COLD_START
        for pos in chosen:
            picks.append(
                {
                    "item_id": rows[pos][0],
                    "score": 0.0,
                    "is_control": False,
                    "reason": "first batch, before any model: a typical item of one kind of"
                    " image in its source and camera, so every kind is seen early",
                }
            )
    else:
        name = strategy_name(project)
        strategy = get_strategy(name)
        if not strategy.supports(project.task_type):
            raise ApplicationError(
                f"Strategy '{name}' cannot choose items of a {project.task_type} project.",
                extra={"available": available(project.task_type)},
            )
        arrays = scoring_arrays(run=scoring_run)
        still_open = set(candidates.values_list("id", flat=True))
        keep = np.array([int(i) in still_open for i in arrays.item_ids], dtype=bool)
        open_items = arrays.take(keep)
        ids, probs = open_items.item_ids, open_items.probs
        has_embeddings = arrays.embeddings is not None and arrays.embeddings.size
        embeddings = open_items.embeddings if has_embeddings else None
        labeled = (
            _labeled_embeddings(scoring_run.model_version, arrays.take(~keep).embeddings)
            if embeddings is not None
            else None
        )
        targets = np.array([c.target_count or 0 for c in classes], dtype=np.int64)
        # What the strategy sees is the task type's to say (`ml.tasks`).
        kind = task_type_of(project)
        spec = kind.ml_spec()
        inputs = spec.to_acquisition_inputs(
            open_items,
            labeled_embeddings=labeled,
            labeled_class_counts=_class_counts(project, classes),
            class_targets=targets if targets.any() else None,
            # Read back from earlier batches only for a strategy that learns from them.
            history=pick_history(project=project, number=number, classes=classes)
            if strategy.reads_history
            else None,
            random_labeled=random_picks_labeled(project=project)
            if strategy.reads_history
            else None,
        )
        selection = (
            select_batch(
                name,
                inputs,
                min(batch_size, len(ids)),
                control_fraction=project.control_fraction,
                seed=seed,
            )
            if len(ids)
            else None
        )
        names = scoring_run.model_version.class_names
        version_labels = scoring_run.model_version.labels_used
        labeled_by_name = {
            c.name: int(n) for c, n in zip(classes, inputs.labeled_class_counts, strict=True)
        }
        if selection is not None and selection.note:
            mix = selection.mix | {
                "note": selection.note,
                "picks": {str(a): int((selection.arms == a).sum()) for a in set(selection.arms)},
                "class_counts": inputs.labeled_class_counts.tolist(),
            }
        for pos, score, control, arm in (
            zip(
                selection.indices,
                selection.scores,
                selection.is_control,
                selection.arms,
                strict=True,
            )
            if selection is not None
            else []
        ):
            p = probs[pos]
            top = np.argsort(p)[::-1][:2]
            reason = kind.pick_reason(
                p,
                names,
                extras={key: values[pos] for key, values in open_items.extras.items()},
                version=scoring_run.model_version,
                control=bool(control),
                arm=str(arm),
            ) or pick_reason(
                p,
                names,
                control=bool(control),
                labels_used=version_labels,
                class_counts=labeled_by_name,
                arm=str(arm),
            )
            picks.append(
                {
                    "item_id": int(ids[pos]),
                    "score": float(score),
                    "is_control": bool(control),
                    "reason": reason,
                    "arm": str(arm),
                    "predicted": names[top[0]],
                    "confidence": float(p[top[0]]),
                }
            )
        pool_size = len(ids)

    selection_round = SelectionRound.objects.create(
        project=project,
        number=number,
        model_version=scoring_run.model_version if scoring_run else None,
        strategy=name,
        batch_size=batch_size,
        control_fraction=project.control_fraction,
        pool_size=pool_size,
        mix=mix,
    )
    by_name = {c.name: c.pk for c in classes}
    SelectionItem.objects.bulk_create(
        SelectionItem(
            selection_round=selection_round,
            item_id=pick["item_id"],
            rank=rank,
            score=pick["score"],
            strategy="random" if pick["is_control"] else pick.get("arm", name),
            is_control=pick["is_control"],
            reason=pick["reason"][:300],
            predicted_class_id=by_name.get(pick.get("predicted")),
            confidence=pick.get("confidence"),
        )
        for rank, pick in enumerate(picks, start=1)
    )
    Item.objects.filter(pk__in=[p["item_id"] for p in picks], state=ItemState.UNLABELED).update(
        state=ItemState.QUEUED
    )
    return selection_round
