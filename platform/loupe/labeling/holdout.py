"""The project's fixed holdout: where an item goes when it enters ground truth.

Each item is assigned once, when it first gets a label: to the holdout when the coin of its
content hash falls under the project's `holdout_fraction`, or when its class has fewer than
`LOUPE_HOLDOUT_MIN_PER_CLASS` holdout items while training keeps more of it than the holdout
does. A class's first label always trains. The split never moves afterwards, so the holdout
metrics of two model versions are measured on the same items, and every label either trains
or measures, never neither.
"""

from django.conf import settings

from loupe.datasets.models import Split
from loupe.labeling.models import GroundTruthCount, counted_class
from loupe.projects.models import Project


def holdout_coin(sha256: str) -> float:
    """A number in [0, 1] read from the content hash: the same file always draws the same."""
    return int(sha256[:8], 16) / 0xFFFFFFFF


class HoldoutAssigner:
    """Assigns labeled items to train or holdout, keeping the per-class counts it started
    from (the database's) up to date as it goes, so a batch of labels of a new class gets its
    minimum holdout within that batch. Deterministic for a given order of items."""

    def __init__(self, *, project: Project, fraction: float | None = None):
        self.fraction = project.holdout_fraction if fraction is None else fraction
        self.minimum = settings.LOUPE_HOLDOUT_MIN_PER_CLASS if self.fraction > 0 else 0
        # [train, holdout] per class, from the counts the database keeps; ties waiting for
        # review hold no split yet.
        self.counts: dict[int | None, list[int]] = {}
        rows = GroundTruthCount.objects.filter(project=project, needs_review=False)
        for class_id, in_holdout, n in rows.values_list("label_class_id", "in_holdout", "n"):
            self.counts.setdefault(counted_class(class_id), [0, 0])[int(in_holdout)] += n

    def split_for(self, *, sha256: str, class_id: int | None) -> str:
        """The split of an item entering ground truth with this class."""
        train, held = self.counts.setdefault(class_id, [0, 0])
        # A class's first label always trains: a model never shown a class cannot find it.
        to_holdout = train > 0 and (
            (self.fraction > 0 and holdout_coin(sha256) < self.fraction)
            or (held < self.minimum and train > held)
        )
        self.counts[class_id][1 if to_holdout else 0] += 1
        return Split.HOLDOUT if to_holdout else Split.TRAIN
