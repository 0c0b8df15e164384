"""Training: ground truth of the train split -> a model version, evaluated on the holdout,
with the simple baseline's metrics beside it."""

import io
import logging
import time

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from loupe import jobs
from loupe.datasets.models import Item, Split
from loupe.datasets.storage import file_replace
from loupe.errors import ApplicationError
from loupe.learning.data import item_tensors, thin_curve
from loupe.learning.models import ModelVersion, RunStatus, TrainingRun, Trigger
from loupe.learning.runs import RunCancelled, run_beat, run_claim, run_finish
from loupe.learning.scoring import version_model
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes
from ml.artifacts import SUFFIX, ItemArrays, save

logger = logging.getLogger(__name__)

TRAIN_TASK = "learning.train"
MIN_LABELS = 4
# Fewer holdout items than this fit no temperature (T = 1): ml.calibration's minimum.
CALIBRATION_MIN_HOLDOUT = 50
BEAT_SECONDS = 1.0


def training_run_create(
    *, project: Project, trigger: str = Trigger.MANUAL, created_by=None, enqueue: bool = True
) -> TrainingRun:
    """Queues a training run with the project's current settings, starting from the latest
    version's weights where it can (see `_start_point`)."""
    config = {
        "model": "small_cnn",
        "image_size": project.image_size,
        "epochs": project.train_epochs,
        "min_steps": settings.LOUPE_MIN_TRAIN_STEPS,
        "loss": project.loss,
        "class_weighting": project.class_weighting,
        "seed": 0,
    }
    config.update(_start_point(project=project, config=config))
    run = TrainingRun.objects.create(
        project=project, trigger=trigger, created_by=created_by, config=config, phase="queued"
    )
    if enqueue:
        jobs.enqueue(TRAIN_TASK, queue="gpu", training_run_id=run.pk)
    return run


def _start_point(*, project: Project, config: dict) -> dict:
    """Warm start: the latest version's weights, fine-tuned for LOUPE_WARM_START_STEPS steps,
    when it has the same model, image size and classes; from scratch otherwise, and for one
    version in LOUPE_FULL_RETRAIN_EVERY, so fine-tuning never drifts for long from what a
    fresh model learns. Returns the config keys that say which, and why."""
    steps = settings.LOUPE_WARM_START_STEPS
    if steps <= 0:
        return {"from_scratch": "warm start is off"}
    previous = (
        ModelVersion.objects.filter(project=project)
        .select_related("training_run")
        .order_by("-version")
        .first()
    )
    if previous is None:
        return {"from_scratch": "first version"}
    since = f"since version {previous.version}"
    if previous.model_kind != config["model"]:
        return {"from_scratch": f"model changed {since}"}
    if previous.image_size != config["image_size"]:
        return {"from_scratch": f"image size changed {since}"}
    if previous.class_names != [c.name for c in project_classes(project=project)]:
        return {"from_scratch": f"classes changed {since}"}
    in_a_row = previous.training_run.config.get("warm_starts_in_a_row", 0) + 1
    every = settings.LOUPE_FULL_RETRAIN_EVERY
    if every and in_a_row >= every:
        return {"from_scratch": f"full retrain every {every} versions"}
    return {
        "warm_start_from": previous.version,
        "warm_start_steps": steps,
        "warm_starts_in_a_row": in_a_row,
    }


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Asks a run to stop; a queued run is cancelled at once."""
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, phase="cancelled"
    )
    run.refresh_from_db()
    return run


def _labeled(project: Project, *, holdout: bool):
    """(id, file, class id, sha256) of labeled items. The holdout is the project's fixed one
    (`labeling.holdout`); every other label trains, including the ones experts just gave."""
    # A tie waiting for review is not a label yet.
    items = Item.objects.filter(
        project=project, ground_truth__isnull=False, ground_truth__needs_review=False
    )
    items = items.filter(split=Split.HOLDOUT) if holdout else items.exclude(split=Split.HOLDOUT)
    rows = items.order_by("id").values_list("id", "file", "ground_truth__label_class_id", "sha256")
    return list(rows)


def training_run_execute(*, training_run_id: int) -> TrainingRun:
    """Runs a queued training run to the end; safe to call twice."""
    run = run_claim(TrainingRun, training_run_id)
    if run is None:
        return TrainingRun.objects.get(pk=training_run_id)
    try:
        version = _train(run)
    except RunCancelled:
        run_finish(run, RunStatus.CANCELLED, phase="cancelled")
    except ApplicationError as exc:
        run_finish(run, RunStatus.FAILED, error=exc.message, phase="failed")
    except Exception as exc:
        logger.exception("training run %s failed", run.pk)
        run_finish(run, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}", phase="failed")
    else:
        logger.info("training run %s produced %s", run.pk, version)
    run.refresh_from_db()
    from loupe.learning.loop import loop_on_training_finished

    loop_on_training_finished(training_run=run)
    return run


def _train(run: TrainingRun) -> ModelVersion:
    import torch

    from ml.baseline import fit_linear_probe
    from ml.models import build_model
    from ml.scoring import score
    from ml.training import TrainConfig, train_classifier

    project = run.project
    classes = project_classes(project=project)
    class_index = {c.pk: i for i, c in enumerate(classes)}
    names = [c.name for c in classes]
    config = run.config
    size = int(config["image_size"])

    run_beat(run, progress=0.0, phase="loading images")
    train_rows = _labeled(project, holdout=False)
    holdout_rows = _labeled(project, holdout=True)
    if len(train_rows) < MIN_LABELS:
        raise ApplicationError(
            f"Training needs at least {MIN_LABELS} labeled items; the project has "
            f"{len(train_rows)}."
        )
    y_train = np.array([class_index[r[2]] for r in train_rows], dtype=np.int64)
    y_holdout = np.array([class_index[r[2]] for r in holdout_rows], dtype=np.int64)

    def loading(done, total):
        run_beat(run, progress=0.1 * done / max(1, total))

    # Items labeled since they were scored in the pool read their pixels from the cache.
    x_train = item_tensors(
        [r[1] for r in train_rows],
        image_size=size,
        progress=loading,
        cache_keys=[r[3] for r in train_rows],
    )
    x_holdout = item_tensors(
        [r[1] for r in holdout_rows], image_size=size, cache_keys=[r[3] for r in holdout_rows]
    )

    model = _warm_start(run, names, size)
    if model is None:
        model = build_model(config["model"], num_classes=len(names), image_size=size, seed=0)
    config = run.config  # the start point may have fallen back to scratch
    # A warm start fine-tunes for exactly its steps; from scratch, epochs and min_steps plan.
    fine_tune = config.get("warm_start_steps") if "warm_start_from" in config else None
    train_config = TrainConfig(
        epochs=int(config["epochs"]),
        min_steps=int(fine_tune or config.get("min_steps", 0)),
        max_steps=fine_tune,
        loss=config["loss"],
        class_weighting=config["class_weighting"],
        seed=int(config["seed"]),
        num_classes=len(names),
        # On a holdout too small to decide, the best epoch is chance: train the full plan.
        early_stopping_patience=(
            settings.LOUPE_EARLY_STOPPING_PATIENCE or None
            if len(holdout_rows) >= settings.LOUPE_EARLY_STOPPING_MIN_HOLDOUT
            else None
        ),
    )
    losses: list[tuple[int, float]] = []
    last_beat = [0.0]

    def on_step(step, total, loss):
        if not losses or losses[-1][0] != step:  # a run stopped early repeats its last step
            losses.append((step, float(loss)))
        now = time.monotonic()
        # `total` is the steps planned, and the steps run once training has ended.
        if now - last_beat[0] >= BEAT_SECONDS or step == total:
            last_beat[0] = now
            run_beat(run, progress=0.1 + 0.8 * step / max(1, total), phase="training")

    run_beat(run, progress=0.1, phase="training")
    result = train_classifier(
        model,
        x_train,
        y_train,
        val_x=x_holdout if len(holdout_rows) else None,
        val_y=y_holdout if len(holdout_rows) else None,
        config=train_config,
        progress=on_step,
    )
    run_beat(run, progress=0.92, phase="evaluating")
    metrics, baseline = {}, {}
    if len(holdout_rows):
        holdout_scores = score(result.model, x_holdout)
        metrics = holdout_metrics(y_holdout, holdout_scores.probs, names)
        metrics["calibration"] = holdout_calibration(y_holdout, holdout_scores.probs)
        # The simple baseline: a class-weighted linear probe on 8x8 pixel thumbnails.
        probe = fit_linear_probe(_thumbs(x_train), y_train, num_classes=len(names), seed=0)
        baseline = holdout_metrics(y_holdout, probe.predict_proba(_thumbs(x_holdout)), names)
        baseline["name"] = "linear probe on 8x8 thumbnails"
        baseline["majority_class"] = majority_baseline(y_train, y_holdout, names)
    buffer = io.BytesIO()
    torch.save({"state_dict": result.model.state_dict(), "classes": names}, buffer)
    embedded = ItemArrays(
        item_ids=np.array([r[0] for r in train_rows], dtype=np.int64),
        embeddings=score(result.model, x_train).embeddings,
    )
    return _record(
        run,
        result,
        (buffer.getvalue(), save(embedded)),
        names,
        size,
        metrics,
        baseline,
        losses,
        labels_used=len(train_rows),
        holdout_size=len(holdout_rows),
    )


def holdout_metrics(y_holdout: np.ndarray, probs: np.ndarray, names: list[str]) -> dict:
    """The holdout figures with what they stand on: per-class support (in `per_class`) and
    95% stratified-bootstrap intervals, so a figure on a handful of items reads as such.
    Deterministic: the same holdout and predictions give the same intervals."""
    from ml.metrics import bootstrap_intervals, classification_metrics

    metrics = classification_metrics(y_holdout, probs, class_names=names)
    metrics["intervals"] = bootstrap_intervals(
        y_holdout,
        probs.argmax(axis=1),
        len(names),
        n_resamples=settings.LOUPE_BOOTSTRAP_SAMPLES,
        seed=0,
    )
    metrics["interval_level"] = 0.95
    metrics["holdout"] = "fixed project holdout"
    return metrics


def holdout_calibration(y_holdout: np.ndarray, probs: np.ndarray) -> dict:
    """Reliability bins and ECE on the holdout before and after temperature scaling, and the
    temperature that scoring divides this version's logits by (1 on a holdout too small to
    fit one; `note` says so). See ml.calibration.calibration_report."""
    from ml.calibration import calibration_report

    return calibration_report(y_holdout, probs, min_size=CALIBRATION_MIN_HOLDOUT)


def majority_baseline(y_train: np.ndarray, y_holdout: np.ndarray, names: list[str]) -> dict:
    """Doing nothing clever: always answer the most frequent training class, scored on the
    holdout like the model. Its balanced accuracy is 1/k for the k classes the holdout
    holds (0 when the holdout lacks that class)."""
    from ml.metrics import classification_metrics

    majority = int(np.bincount(y_train, minlength=len(names)).argmax())
    constant = np.zeros((len(y_holdout), len(names)))
    constant[:, majority] = 1.0
    metrics = classification_metrics(y_holdout, constant, class_names=names)
    return {
        "name": f"always answering {names[majority]}, the majority class",
        "class": names[majority],
        **{key: metrics[key] for key in ("n", "accuracy", "balanced_accuracy", "macro_f1")},
    }


def _warm_start(run: TrainingRun, names: list[str], size: int):
    """The model of the version the run starts from, with its weights; None to train from
    scratch. When that version is gone, no longer fits the project, or its weights cannot be
    read, the run trains from scratch and its config says why."""
    config = run.config
    number = config.get("warm_start_from")
    if number is None:
        return None
    previous = ModelVersion.objects.filter(project=run.project, version=number).first()
    reason, model = None, None
    if previous is None:
        reason = f"version {number} no longer exists"
    elif (previous.model_kind, previous.image_size, previous.class_names) != (
        config["model"],
        size,
        names,
    ):
        reason = f"version {number} no longer matches the project's classes or image size"
    else:
        try:
            model = version_model(model_version=previous)
        except Exception as exc:  # a missing or damaged file: the run still trains
            logger.warning("training run %s cannot start from version %s: %s", run.pk, number, exc)
            reason = f"the weights of version {number} could not be read"
    if reason is not None:
        fallback = {k: v for k, v in config.items() if not k.startswith("warm_start")}
        fallback.pop("warm_starts_in_a_row", None)
        run.config = {**fallback, "from_scratch": reason}
        TrainingRun.objects.filter(pk=run.pk).update(config=run.config)
    return model


def _thumbs(x) -> np.ndarray:
    import torch.nn.functional as F

    return F.adaptive_avg_pool2d(x, 8).flatten(1).numpy()


def _record(run, result, artifacts, names, size, metrics, baseline, losses, **counts):
    """Writes the artifacts (weights, training-set embeddings) and the model version;
    exactly one version per run, even when two workers finish the same run."""
    name = f"models/{run.project.slug}/run-{run.pk}.pt"
    embeddings_name = f"models/{run.project.slug}/run-{run.pk}-train-embeddings{SUFFIX}"
    for path, content in zip((name, embeddings_name), artifacts, strict=True):
        file_replace(name=path, content=content)
    try:
        with transaction.atomic():
            number = (
                ModelVersion.objects.select_for_update()
                .filter(project=run.project)
                .aggregate(n=Max("version"))["n"]
                or 0
            ) + 1
            version = ModelVersion.objects.create(
                project=run.project,
                training_run=run,
                version=number,
                weights=name,
                train_embeddings=embeddings_name,
                model_kind=run.config["model"],
                image_size=size,
                class_names=names,
                metrics=metrics,
                baseline_metrics=baseline,
                labels_used=counts["labels_used"],
                device=result.device,
                train_seconds=result.seconds,
            )
            finished = run_finish(
                run,
                RunStatus.SUCCEEDED,
                phase="done",
                device=result.device,
                class_weights=[]
                if result.class_weights is None
                else [float(w) for w in result.class_weights],
                loss_curve=thin_curve(losses),
                history=result.history,
                **counts,
            )
            if not finished:
                raise IntegrityError("run already ended")
    except IntegrityError:
        return ModelVersion.objects.get(training_run=run)
    return version
