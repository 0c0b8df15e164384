"""Single-label image classification: the task type Loupe started with.

The spec wraps the library's classifier pieces as they are: :func:`ml.models.build_model`,
:func:`ml.training.train_classifier`, :func:`ml.scoring.score` and
:func:`ml.metrics.classification_metrics`, whose headline is the balanced accuracy (rare
defect classes count as much as the common good parts).
"""

from __future__ import annotations

from ml.strategies.base import CLASSIFICATION
from ml.tasks.base import Evaluation, Predictions, TaskSpec


class ClassificationSpec(TaskSpec):
    """One class per item, from ``(n, k)`` softmax probabilities."""

    name = CLASSIFICATION
    headline_metric = "balanced_accuracy"

    def build_model(self, kind: str, *, num_classes: int, image_size: int, seed=None, **options):
        from ml.models import build_model

        return build_model(
            kind, num_classes=num_classes, image_size=image_size, seed=seed, **options
        )

    def train(self, model, x, y, *, val_x=None, val_y=None, config=None, progress=None):
        from ml.training import train_classifier

        return train_classifier(
            model, x, y, val_x=val_x, val_y=val_y, config=config, progress=progress
        )

    def predict(
        self, model, x, *, batch_size: int = 256, mc_samples: int = 0, seed: int = 0
    ) -> Predictions:
        from ml.scoring import score

        output = score(model, x, batch_size=batch_size, mc_samples=mc_samples, seed=seed)
        return Predictions(
            probs=output.probs, embeddings=output.embeddings, mc_probs=output.mc_probs
        )

    def evaluate(self, y_true, predictions: Predictions, *, class_names: list[str]) -> Evaluation:
        from ml.metrics import classification_metrics

        details = classification_metrics(y_true, predictions.probs, class_names=class_names)
        return Evaluation(
            metric=self.headline_metric,
            value=details[self.headline_metric],
            per_class=details["per_class"],
            details=details,
        )
