"""How far annotators agree, per annotator and per class, in SQL.

Over items that two or more annotators answered, every ordered pair of two different
annotators on the same item is compared (each annotator's latest answer counts, skips and
unknown classes are no vote: the rule of loupe.labeling.consensus). Then:

- overall: the share of agreeing pairs (equals labeling's `pairwise_agreement`);
- per class c: of the pairs where the first chose c, the share where the other did too
  (labeling's `class_specific_agreement`);
- per annotator a: of the pairs where the first is a, the share where the other agreed.

Krippendorff's alpha and Cohen's kappa per annotator live in labeling
(`GET /api/v1/labeling/projects/<slug>/agreement/`); they walk every vote in Python.
"""

from __future__ import annotations

from collections import defaultdict

from loupe.insights.common import classes_of, fetch_all, ratio
from loupe.labeling.models import Annotation
from loupe.projects.models import Project

_VOTES = """
WITH multi AS (
    SELECT a.item_id
    FROM {annotation} a
    WHERE a.project_id = %s AND a.was_cancelled = %s AND a.label_class_id IS NOT NULL
    GROUP BY a.item_id
    HAVING COUNT(*) > 1
),
ranked AS (
    SELECT a.item_id,
           COALESCE(NULLIF(a.annotator, ''),
                    'annotation-' || CAST(a.ls_annotation_id AS VARCHAR(24))) AS who,
           a.label_class_id AS cls,
           ROW_NUMBER() OVER (
               PARTITION BY a.item_id,
                   COALESCE(NULLIF(a.annotator, ''),
                            'annotation-' || CAST(a.ls_annotation_id AS VARCHAR(24)))
               ORDER BY CASE WHEN a.ls_updated_at IS NULL THEN 0 ELSE 1 END DESC,
                        a.ls_updated_at DESC, a.id DESC
           ) AS rn
    FROM {annotation} a JOIN multi m ON m.item_id = a.item_id
    WHERE a.was_cancelled = %s AND a.label_class_id IS NOT NULL
),
votes AS (SELECT item_id, who, cls FROM ranked WHERE rn = 1),
pairs AS (
    SELECT x.item_id, x.who AS who, x.cls AS cls,
           CASE WHEN x.cls = y.cls THEN 1 ELSE 0 END AS agree
    FROM votes x JOIN votes y ON x.item_id = y.item_id AND x.who <> y.who
)
"""


_QUERY = (
    _VOTES
    + """
SELECT who, cls, COUNT(*), SUM(agree), COUNT(DISTINCT item_id) FROM pairs GROUP BY who, cls
UNION ALL
SELECT NULL, NULL, COUNT(*), 0, 0
FROM (SELECT item_id FROM votes GROUP BY item_id HAVING COUNT(*) > 1) compared
"""
)


def agreement_sql(project: Project) -> tuple[str, list]:
    """The one statement behind `agreement` and its parameters (shown by the benchmark)."""
    sql = _QUERY.format(annotation=Annotation._meta.db_table)
    return sql, [project.pk, False, False]


def agreement(*, project: Project) -> dict:
    """Pairwise agreement overall, per class and per annotator (see the module docstring)."""
    by_class: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    by_annotator: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    items_compared = 0
    for who, cls, pairs, agree, items in fetch_all(*agreement_sql(project)):
        if who is None:
            items_compared = pairs
            continue
        by_class[cls][0] += pairs
        by_class[cls][1] += agree
        # An annotator has one vote per item, so their items split cleanly by class.
        row = by_annotator[who]
        row[0], row[1], row[2] = row[0] + pairs, row[1] + agree, row[2] + items
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
            for c in classes_of(project)
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
