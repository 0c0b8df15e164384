"""How far annotators agree, per annotator and per class.

Over items that two or more annotators answered, every ordered pair of two different
annotators on the same item is compared (each annotator's latest answer counts, skips and
unknown classes are no vote: the rule of loupe.labeling.consensus). Then:

- overall: the share of agreeing pairs (equals labeling's `pairwise_agreement`);
- per class c: of the pairs where the first chose c, the share where the other did too
  (labeling's `class_specific_agreement`);
- per annotator a: of the pairs where the first is a, the share where the other agreed.

The votes are read from AgreementVote, which database triggers rebuild for an item whenever
its annotations change (loupe.labeling.counters): only items with two or more voters have
rows, so the statistics read those, not every annotation.

Krippendorff's alpha and Cohen's kappa per annotator live in labeling
(`GET /api/v1/labeling/projects/<slug>/agreement/`); they walk every vote in Python.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Sum

from loupe.insights.common import ratio
from loupe.labeling.models import AgreementVote
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes


def agreement(*, project: Project) -> dict:
    """Pairwise agreement overall, per class and per annotator (see the module docstring)."""
    by_class: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    by_annotator: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    votes = AgreementVote.objects.filter(project=project)
    rows = (
        votes.values_list("annotator", "label_class_id")
        .annotate(pairs=Sum("pairs"), agree=Sum("agree"), items=Count("*"))
        .order_by()
    )
    for who, cls, pairs, agree, items in rows:
        by_class[cls][0] += pairs
        by_class[cls][1] += agree
        # An annotator has one vote per item, so their items split cleanly by class.
        row = by_annotator[who]
        row[0], row[1], row[2] = row[0] + pairs, row[1] + agree, row[2] + items
    items_compared = votes.values("item_id").distinct().count()
    total_pairs = sum(p for p, _ in by_class.values())
    return {
        "items_compared": items_compared,
        "pairs": total_pairs,
        "pairwise_agreement": ratio(sum(a for _, a in by_class.values()), total_pairs),
        "classes": [
            {
                "name": c.name,
                "pairs": by_class.get(c.pk, [0, 0])[0],
                "agreement": ratio(by_class.get(c.pk, [0, 0])[1], by_class.get(c.pk, [0, 0])[0]),
            }
            for c in project_classes(project=project)
        ],
        "annotators": sorted(
            (
                {
                    "annotator": who,
                    "items_compared": items,
                    "pairs": pairs,
                    "agreement": ratio(agree, pairs),
                }
                for who, (pairs, agree, items) in by_annotator.items()
            ),
            key=lambda row: (-row["items_compared"], row["annotator"]),
        ),
    }
