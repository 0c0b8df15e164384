"""The ground-truth exports: what a spreadsheet user opens is data, never a formula."""

import csv
import io

import pytest

from loupe.insights.exports import export_csv
from loupe.labeling.models import Decision, GroundTruth
from loupe.projects.services import project_create
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]


def test_csv_export_defuses_every_cell_a_spreadsheet_would_run_as_a_formula():
    project = project_create(name="Welds", created_by=None, classes=["=cmd|' /C calc'!A0"])
    label = project.classes.get()
    for text in FORMULAS:
        item = ItemFactory(project=project, original_name=text, source=text, state="labeled")
        GroundTruth.objects.create(
            item=item,
            project=project,
            label_class=label,
            decided_by=Decision.IMPORTED,
            agreement=-0.5,
        )

    rows = list(csv.DictReader(io.StringIO("".join(export_csv(project=project)))))

    assert [r["original_name"] for r in rows] == [f"'{text}" for text in FORMULAS]
    assert [r["source"] for r in rows] == [f"'{text}" for text in FORMULAS]
    assert {r["label"] for r in rows} == {"'=cmd|' /C calc'!A0"}
    # Numbers stay numbers (a negative one is not text); ordinary text is left alone.
    assert rows[0]["agreement"] == "-0.5" and rows[0]["split"] == "pool"
