"""Training: ground truth of the train split -> a model version, evaluated on the holdout,
with the simple baseline's metrics beside it."""

import logging
import time

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from loupe import jobs
from loupe.datasets.storage import file_replace
from loupe.errors import ApplicationError
from loupe.learning.data import thin_curve
from loupe.learning.models import ModelVersion, RunStatus, TrainingRun, Trigger
from loupe.learning.scoring import version_model
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes
from loupe.runs import RunCancelled, run_beat, run_claim, run_finish
from loupe.tasktypes import task_type_of
from ml.artifacts import SUFFIX, ItemArrays, save

logger = logging.getLogger(__name__)

MIN_LABELS = 4
BEAT_SECONDS = 1.0


def training_run_create(
    *, project: Project, trigger: str = Trigger.MANUAL, created_by=None, enqueue: bool = True
) -> TrainingRun:
    """Queues a training run with the project's current settings, starting from the latest
    version's weights where it can (see `_start_point`)."""
    config = {
        "model": task_type_of(project).model_kind,
        "image_size": project.image_size,
        "epochs": project.train_epochs,
        "min_steps": settings.LOUPE_MIN_TRAIN_STEPS,
        "loss": project.loss,
        "class_weighting": project.class_weighting,
        "augmentations": dict(project.augmentations or {}),
        "seed": 0,
    }
    config.update(_start_point(project=project, config=config))
    run = TrainingRun.objects.create(
        project=project, trigger=trigger, created_by=created_by, config=config, phase="queued"
    )
    if enqueue:
        jobs.enqueue(jobs.TRAIN, training_run_id=run.pk)
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


def training_run_execute(*, training_run_id: int) -> TrainingRun:
    """Runs a queued training run to the end and returns it; safe to call twice. What comes
    next is the loop's business (`loop.loop_train`)."""
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
    return run


def _train(run: TrainingRun) -> ModelVersion:
    """The project's task type trains: its adapter reads the labeled rows and reports on the
    holdout, its ml spec builds, trains and predicts (`loupe.tasktypes`, `ml.tasks`)."""
    from ml.training import TrainConfig

    project = run.project
    kind = task_type_of(project)
    spec = kind.ml_spec()
    classes = project_classes(project=project)
    names = [c.name for c in classes]
    config = run.config
    size = int(config["image_size"])

    run_beat(run, progress=0.0, phase="loading images")
    train_rows = kind.training_rows(project=project, holdout=False)
    holdout_rows = kind.training_rows(project=project, holdout=True)
    if len(train_rows) < MIN_LABELS:
        raise ApplicationError(
            f"Training needs at least {MIN_LABELS} labeled items; the project has "
            f"{len(train_rows)}."
        )
    y_train = kind.training_targets(train_rows, classes=classes)
    y_holdout = kind.training_targets(holdout_rows, classes=classes)

    def loading(done, total):
        run_beat(run, progress=0.1 * done / max(1, total))

    # Items labeled since they were scored in the pool read their pixels from the cache.
    x_train = kind.item_inputs(
        files=[r.file for r in train_rows],
        extra_files=[r.extra_files for r in train_rows],
        cache_keys=[r.sha256 for r in train_rows],
        image_size=size,
        progress=loading,
    )
    x_holdout = kind.item_inputs(
        files=[r.file for r in holdout_rows],
        extra_files=[r.extra_files for r in holdout_rows],
        cache_keys=[r.sha256 for r in holdout_rows],
        image_size=size,
    )

    model = _warm_start(run, names, size)
    if model is None:
        model = spec.build_model(config["model"], num_classes=len(names), image_size=size, seed=0)
    config = run.config  # the start point may have fallen back to scratch
    # A warm start fine-tunes for exactly its steps; from scratch, epochs and min_steps plan.
    fine_tune = config.get("warm_start_steps") if "warm_start_from" in config else None
    # On a holdout too small to decide, the best epoch is chance: train the full plan.
    patience = (
        settings.LOUPE_EARLY_STOPPING_PATIENCE or None
        if len(holdout_rows) >= settings.LOUPE_EARLY_STOPPING_MIN_HOLDOUT
        else None
    )
    train_config = TrainConfig(
        epochs=int(config["epochs"]),
        min_steps=int(fine_tune or config.get("min_steps", 0)),
        max_steps=fine_tune,
        loss=config["loss"],
        class_weighting=config["class_weighting"],
        seed=int(config["seed"]),
        num_classes=len(names),
        early_stopping_patience=patience,
        # The version reports on this holdout: an epoch chosen on it would make its figures
        # optimistic, so the last epoch is kept unless early stopping was asked for.
        keep_best_epoch=patience is not None,
        **kind.train_options(config=config),
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
    result = spec.train(
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
        metrics, baseline = kind.holdout_report(
            model=result.model,
            x_train=x_train,
            y_train=y_train,
            x_holdout=x_holdout,
            y_holdout=y_holdout,
            names=names,
        )
    embedded = ItemArrays(
        item_ids=np.array([r.item_id for r in train_rows], dtype=np.int64),
        embeddings=spec.predict(result.model, x_train).embeddings,
    )
    version = _record(
        run,
        result,
        (spec.weights_bytes(result.model, class_names=names), save(embedded)),
        names,
        size,
        metrics,
        baseline,
        losses,
        labels_used=len(train_rows),
        holdout_size=len(holdout_rows),
    )
    # What the new version makes worth scoring joins the pool before scoring starts; the
    # version stands whether or not that works.
    try:
        added = kind.pool_refresh(project=project, version=version, model=result.model)
    except Exception:
        logger.exception("training run %s: adding pool items failed", run.pk)
    else:
        if added:
            logger.info("training run %s added %s pool items", run.pk, added)
    return version


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
