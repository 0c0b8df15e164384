"""What a task type is to the platform: the Label Studio side of labeling it, the rule that
turns several answers into ground truth, and the rows training reads and scoring writes.

One adapter per task type, registered in `loupe.tasktypes` under the same key as its
learning spec in `ml.tasks` (the project's `task_type`). Shared code (import, storage, runs,
chunks, selection rounds, counters, pages) asks the registry by project and never branches
on the task type itself. This module imports only models, so that every app may use it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from loupe.datasets.models import ImportRejection, Item, ItemState, Split
from loupe.labeling.models import Decision, GroundTruth


@dataclass(frozen=True)
class Vote:
    """One annotator's latest answer on an item; `label` None for a skip or unknown class;
    `answer` the structured answer of task types that have one (boxes), else None."""

    annotator: str
    label: Hashable | None
    cancelled: bool = False
    answer: object = None

    @property
    def counts(self) -> bool:
        """Whether the answer is a vote (for a class, or a structured answer), not a skip
        or an unknown class."""
        return not self.cancelled and (self.label is not None or self.answer is not None)


@dataclass(frozen=True)
class Outcome:
    """What an item's answers decide: its state and, once labeled, the label and how."""

    state: str
    label: Hashable | None = None
    decided_by: str | None = None
    votes: int = 0
    agreement: float | None = None
    needs_review: bool = False
    # The decided structured answer (boxes) of task types that have one.
    answer: object = None

    @property
    def decided(self) -> bool:
        """Whether there is ground truth: a class, or a structured answer."""
        return self.label is not None or self.answer is not None


def plurality(votes: Sequence[Vote], *, overlap: int) -> Outcome:
    """The class with most votes, once `overlap` annotators answered (the rule of
    `labeling.consensus`): one voter decides alone (`single`), several by `majority` with
    the winner's share as agreement; a tie waits for review; all skipped is `skipped`."""
    answered = len(votes)
    if answered < max(1, overlap):
        return Outcome(state=ItemState.IN_ANNOTATION)
    labels = [v.label for v in votes if v.counts]
    if not labels:
        all_skipped = all(v.cancelled for v in votes)
        return Outcome(state=ItemState.SKIPPED if all_skipped else ItemState.IN_ANNOTATION)
    counts = Counter(labels)
    top = max(counts.values())
    tied = [label for label in dict.fromkeys(labels) if counts[label] == top]
    decided_by = Decision.SINGLE if len(labels) == 1 else Decision.MAJORITY
    return Outcome(
        state=ItemState.IN_ANNOTATION if len(tied) > 1 else ItemState.LABELED,
        label=tied[0],
        decided_by=decided_by,
        votes=len(labels),
        agreement=top / len(labels),
        needs_review=len(tied) > 1,
    )


class TaskTypeImport:
    """What an import a task type runs its own way (`TaskType.import_items`) shares with
    every import: its rejections with their reasons, a heartbeat and progress every
    `beat_every` source entries, and the counts written at the end."""

    beat_every = 200

    def __init__(self, job, accept, progress):
        self.job, self.accept, self.progress = job, accept, progress
        self.project = job.project
        self.rejections: list[ImportRejection] = []

    def reject(self, where: str, reason: str) -> None:
        self.rejections.append(ImportRejection(job=self.job, path=where[:1000], reason=reason))

    def count(self) -> None:
        """One source entry read."""
        from loupe.runs import run_beat

        self.job.processed += 1
        if self.job.processed % self.beat_every == 0:
            run_beat(self.job, processed=self.job.processed)
            if self.progress:
                self.progress(self.job)

    def record(self, *, offered: int, inserted: int, labeled: int = 0) -> None:
        """The rejections and the job's counts: `offered` items made from the source, of
        which `inserted` were new and `labeled` came with ground truth; inside the
        transaction that inserted them."""
        from loupe.runs import run_beat

        ImportRejection.objects.bulk_create(self.rejections)
        self.job.imported += inserted
        self.job.labeled += labeled
        self.job.duplicates += offered - inserted
        self.job.rejected = len(self.rejections)
        run_beat(
            self.job,
            processed=self.job.processed,
            imported=self.job.imported,
            labeled=self.job.labeled,
            duplicates=self.job.duplicates,
            rejected=self.job.rejected,
        )


def imported_ground_truth_create(*, project, truths) -> None:
    """Ground truth that came with imported items: `truths` holds (content hash of the
    item, class id or None, answer or None, split) per item, inserted in bulk."""
    truths = list(truths)
    if not truths:
        return
    ids = dict(
        Item.objects.filter(project=project, sha256__in=[t[0] for t in truths]).values_list(
            "sha256", "id"
        )
    )
    GroundTruth.objects.bulk_create(
        GroundTruth(
            item_id=ids[sha],
            project=project,
            in_holdout=split == Split.HOLDOUT,
            label_class_id=class_id,
            answer=answer,
            decided_by=Decision.IMPORTED,
            agreement=1.0,
        )
        for sha, class_id, answer, split in truths
    )


def summary_figure(value) -> str:
    """A holdout figure as a one-line summary writes it: three decimals, n/a for none."""
    return "n/a" if value is None else f"{value:.3f}"


def summary_interval(metrics: dict, name: str) -> str:
    """A figure's 95% interval as " [low, high]", or "" when the version has none."""
    low, high = (metrics.get("intervals") or {}).get(name) or (None, None)
    return f" [{low:.3f}, {high:.3f}]" if low is not None else ""


@dataclass(frozen=True)
class TrainingRow:
    """One labeled item as training reads it: its file(s), content hash (the pixel cache's
    key) and its ground truth (`label_class_id`, and `answer` for structured ones)."""

    item_id: int
    file: str
    label_class_id: int | None
    sha256: str
    answer: object = None
    extra_files: tuple[str, ...] = ()


class TaskType:
    """The platform side of one task type. Subclasses set `name` (the key shared with
    `ml.tasks`) and `title`, and override what differs from single-image, single-class
    work; the defaults here are what every task type so far shares."""

    name: str = ""
    title: str = ""
    # The classes every project of this task type has, in the order of the model's outputs
    # (empty: the project chooses its own).
    fixed_classes: tuple[str, ...] = ()
    # The model its ml spec builds (`TaskSpec.build_model`'s kind).
    model_kind: str = "small_cnn"
    # Whether picks get saliency overlays and nearest labeled items, and labels a
    # label-error review by the model (both read a classifier's class probabilities).
    explains: bool = True

    def ml_spec(self):
        """The learning side of this task type (`ml.tasks`)."""
        from ml.tasks import get_task

        return get_task(self.name)

    # --- Label Studio ------------------------------------------------------------------------

    def label_config(self, *, classes: list[str], guidelines: str, image_px: int | None) -> str:
        """The labeling config XML; ValueError when the classes cannot make one."""
        raise NotImplementedError

    def task_data(self, *, file: str, extra_files: Sequence[str] = ()) -> dict[str, str]:
        """The task data naming the item's file(s), as URLs Label Studio loads."""
        raise NotImplementedError

    def pre_annotation(self, *, predicted_class: str | None, confidence: float | None):
        """The model's guess pushed with a task (`ls_payloads.PushPrediction`), or None."""
        raise NotImplementedError

    def pick_pre_annotation(self, *, pick):
        """The pre-annotation of a pick (`learning.models.SelectionItem`) pushed with its
        task, or None: by default the model's class and confidence (`pre_annotation`)."""
        if pick.predicted_class is None:
            return None
        return self.pre_annotation(
            predicted_class=pick.predicted_class.name, confidence=pick.confidence
        )

    def read_answer(self, result: list[dict]) -> list[str]:
        """The class names an annotation's result chose, in order, each once."""
        raise NotImplementedError

    def answer_class(self, result: list[dict], class_ids: dict[str, int]) -> int | None:
        """The class id an answer votes for (None: no vote); `class_ids` by class name."""
        chosen = self.read_answer(result)
        return class_ids.get(chosen[0]) if chosen else None

    def answer_value(self, result: list[dict]):
        """The structured answer an annotation's `result` holds, JSON-ready, as
        `Annotation.answer` keeps it (boxes with their classes); None for task types whose
        answer is a class."""
        return None

    def decide(self, votes: Sequence[Vote], *, overlap: int) -> Outcome:
        """Ground truth from the annotators' latest answers on one item."""
        return plurality(votes, overlap=overlap)

    def class_in_use(self, *, project, name: str) -> bool:
        """Whether labels name the class beyond its ground-truth and annotation rows (the
        boxes of a detection answer); a class in use cannot be removed."""
        return False

    # --- import ------------------------------------------------------------------------------

    def import_items(self, *, job, path, accept, progress) -> bool:
        """Imports the job's source its own way and returns True, or returns False for the
        shared import of one image per item (`datasets.services`). `accept(entry)`
        validates and stores one source entry, returning (accepted file, rejection reason)."""
        return False

    # --- learning ----------------------------------------------------------------------------

    def item_inputs(self, *, files, extra_files, cache_keys, image_size, progress=None):
        """What the ml spec's train and predict read for these items: by default one image
        tensor ``(n, 3, size, size)``, with pixels from the cache by the items' hashes."""
        from loupe.learning.data import item_tensors

        return item_tensors(
            list(files), image_size=image_size, progress=progress, cache_keys=list(cache_keys)
        )

    def augmentation(self) -> type | None:
        """The dataclass of this task type's training augmentations, whose fields
        `Project.augmentations` may set (what a field starts at is `train_options`'s
        choice); None (the default): the task type takes no such setting."""
        return None

    def augmentation_sentence(self, augment) -> str | None:
        """What training does to each example under ``augment`` (``train_options``'s
        ``augment``), as the overview page says it; None: nothing to say."""
        return None

    def train_options(self, *, config: dict) -> dict:
        """More `ml.training.TrainConfig` fields from a training run's config (what this
        task type trains with beyond the shared settings); none by default."""
        return {}

    def pool_refresh(self, *, project, version, model) -> int:
        """After a version is trained, adds the pool items it makes worth scoring (pairs
        mined from its embedding); returns how many. By default the pool is what was
        imported."""
        return 0

    def pick_reason(self, probs, names, *, extras, version, control, arm) -> str | None:
        """Why an item was picked, when this task type words it its own way (None: the
        shared wording of `learning.selection.pick_reason`). `extras` holds the item's
        task-specific scoring values by name."""
        return None

    # True where `pick_values` gives picks their values; otherwise the pick history is read
    # by class alone, without asking it (one query fewer per selection).
    values_picks = False

    def pick_values(self, *, picks: Sequence[tuple[int, int]]) -> dict | None:
        """What each labeled pick taught the model version that picked it, as this task
        type measures it: ``{(item id, version id): value}`` for those of ``picks`` (item
        id, version id) whose ground truth is settled. None (the default): picks are
        valued by the surprise and rarity of their class (`ml.strategies.adaptive`). Only
        asked of a task type whose `values_picks` is set."""
        return None

    def training_rows(self, *, project, holdout: bool) -> list[TrainingRow]:
        """The labeled items of the train split, or of the holdout, in item order."""
        raise NotImplementedError

    def training_targets(self, rows: Sequence[TrainingRow], *, classes) -> np.ndarray:
        """What the model learns for these rows, in the ml spec's shape."""
        raise NotImplementedError

    def holdout_report(self, *, model, x_train, y_train, x_holdout, y_holdout, names):
        """(metrics, baseline metrics) of a trained model on the holdout, as the model
        version keeps them."""
        raise NotImplementedError

    def holdout_summary(self, metrics: dict, baseline: dict) -> str:
        """A version's holdout figures in one line, beside its baseline's (the command
        line's report)."""

        figure = summary_figure
        return (
            f"holdout balanced accuracy {figure(metrics.get('balanced_accuracy'))}"
            f" (baseline {figure(baseline.get('balanced_accuracy'))}),"
            f" macro-F1 {figure(metrics.get('macro_f1'))}"
        )

    def predictions_insert(
        self, *, version, run, item_ids: np.ndarray, probs: np.ndarray, scored=None
    ):
        """Writes the prediction rows people filter and sort on for a scored chunk;
        `scored` is the chunk's artifact (`ml.artifacts.ItemArrays`: scores, extras)."""
        raise NotImplementedError

    def label_suspects(self, *, project) -> list[dict] | None:
        """Labels this task type doubts by itself, as review suspects (`item_id`, `given`,
        `suggested`, `score`, `evidence`, and `why` in words); None: the model's scan of
        `learning.label_suspects` finds them."""
        return None

    # --- exports -----------------------------------------------------------------------------

    # The columns of `ground_truth_rows` and of `prediction_rows`, in order.
    ground_truth_fields: tuple[str, ...] = ()
    prediction_fields: tuple[str, ...] = ()

    def ground_truth_rows(self, *, project, split: str | None = None):
        """Usable ground truth, item by item (dicts of `ground_truth_fields`), streamed."""
        raise NotImplementedError

    def prediction_rows(self, *, model_version):
        """A version's predictions, item by item (dicts of `prediction_fields`), streamed."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
