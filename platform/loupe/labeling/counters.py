"""What the database keeps about labels and answers, so the throughput and agreement
statistics read a few thousand rows instead of every annotation (see loupe.counters).

- ANNOTATION_DAYS: answers per annotator and day; skips (cancelled answers) are left out.
- GROUND_TRUTH: ground truth per class, review flag and holdout flag.
- LABEL_DAYS: new ground-truth labels per day and class.

Ground truth without a class (the boxes of a detection page) is counted under class
NO_CLASS (0, never a class's id), so the counters' keys are never NULL: a unique key
treats NULLs as distinct, and an upsert on one would add a row per statement.
- AGREEMENT_VOTES: for every item two or more annotators voted on, each annotator's latest
  vote (labeling.consensus's rule) with its pair counts; rebuilt for the items a statement
  touched.
"""

from __future__ import annotations

from loupe.counters import (
    Counter,
    Key,
    drop_triggers_sql,
    row_triggers_sql,
    statement_triggers_sql,
)
from loupe.labeling.consensus import LATEST_ANSWER_FIRST_SQL, VOTER_SQL
from loupe.labeling.models import NO_CLASS

_CLASS_KEY = Key("label_class_id", f"COALESCE({{r}}.label_class_id, {NO_CLASS})")


_ANSWERED_AT = "COALESCE({r}.ls_updated_at, {r}.created_at)"


def _utc_day(expression: str) -> Key:
    return Key(
        "day",
        postgresql=f"({expression} AT TIME ZONE 'UTC')::date",
        sqlite=f"date({expression})",
    )


ANNOTATION_DAYS = Counter(
    name="loupe_annotation_days",
    source="labeling_annotation",
    table="labeling_annotationdaycount",
    keys=(
        Key("project_id", "{r}.project_id"),
        Key("annotator", "{r}.annotator"),
        _utc_day(_ANSWERED_AT),
    ),
    condition="NOT {r}.was_cancelled",
)

GROUND_TRUTH = Counter(
    name="loupe_ground_truth",
    source="labeling_groundtruth",
    table="labeling_groundtruthcount",
    keys=(
        Key("project_id", "{r}.project_id"),
        _CLASS_KEY,
        Key("needs_review", "{r}.needs_review"),
        Key("in_holdout", "{r}.in_holdout"),
    ),
)

LABEL_DAYS = Counter(
    name="loupe_label_days",
    source="labeling_groundtruth",
    table="labeling_labeldaycount",
    keys=(
        Key("project_id", "{r}.project_id"),
        _utc_day("{r}.created_at"),
        _CLASS_KEY,
    ),
    condition="NOT {r}.needs_review AND {r}.decided_by <> 'imported'",
)

# Each voter's latest answer on an item, by the one rule of labeling.consensus (voter_of,
# answer_order): when that answer names a class, it is the voter's vote.
_WHO = VOTER_SQL.format(r="a")
_VOTES_OF = f"""
SELECT project_id, item_id, who, cls, pairs, agree FROM (
    SELECT project_id, item_id, who, cls,
           COUNT(*) OVER (PARTITION BY item_id) - 1 AS pairs,
           COUNT(*) OVER (PARTITION BY item_id, cls) - 1 AS agree
    FROM (
        SELECT a.project_id, a.item_id, {_WHO} AS who, a.label_class_id AS cls,
               a.was_cancelled AS skipped,
               ROW_NUMBER() OVER (
                   PARTITION BY a.item_id, {_WHO}
                   ORDER BY {LATEST_ANSWER_FIRST_SQL.format(r="a")}
               ) AS rn
        FROM labeling_annotation a
        WHERE a.item_id IN ({{items}}) AND {_WHO} IS NOT NULL
    ) ranked
    WHERE rn = 1 AND NOT skipped AND cls IS NOT NULL
) votes
WHERE pairs > 0"""


def _rebuild_votes(items: str) -> list[str]:
    """Statements that rebuild the votes of the items `items` (a subquery or a list)."""
    return [
        f"DELETE FROM labeling_agreementvote WHERE item_id IN ({items})",
        "INSERT INTO labeling_agreementvote "
        "(project_id, item_id, annotator, label_class_id, pairs, agree) "
        + _VOTES_OF.format(items=items),
    ]


class _AgreementVotes:
    """Not a grouped count, so not a Counter: the same install/uninstall/recount surface."""

    name = "loupe_agreement_votes"
    source = "labeling_annotation"
    table = "labeling_agreementvote"

    def install_sql(self, vendor: str) -> list[str]:
        if vendor == "sqlite":
            return row_triggers_sql(
                self.name,
                self.source,
                lambda new, old: _rebuild_votes(", ".join(f"{r}.item_id" for r in (old, new) if r)),
            )
        if vendor != "postgresql":
            raise NotImplementedError(f"no agreement triggers for the {vendor} database")

        def body(new: str | None, old: str | None) -> list[str]:
            touched = " UNION ".join(f"SELECT item_id FROM {t}" for t in (new, old) if t)
            # The items are locked first (in id order), so two transactions answering the
            # same item rebuild its votes one after the other, the second seeing the first.
            return [
                f"PERFORM 1 FROM datasets_item WHERE id IN ({touched}) ORDER BY id FOR UPDATE",
                *_rebuild_votes(touched),
            ]

        return statement_triggers_sql(self.name, self.source, body)

    def drop_sql(self, vendor: str) -> list[str]:
        return drop_triggers_sql(self.name, self.source, vendor)

    def contents_sql(self) -> str:
        return (
            "SELECT project_id, item_id, annotator, label_class_id, pairs, agree "
            "FROM labeling_agreementvote"
        )

    def recount_sql(self, vendor: str) -> list[str]:
        return [
            "DELETE FROM labeling_agreementvote",
            "INSERT INTO labeling_agreementvote "
            "(project_id, item_id, annotator, label_class_id, pairs, agree) "
            + _VOTES_OF.format(items="SELECT item_id FROM labeling_annotation"),
        ]


AGREEMENT_VOTES = _AgreementVotes()
KEPT = (GROUND_TRUTH, ANNOTATION_DAYS, LABEL_DAYS, AGREEMENT_VOTES)
