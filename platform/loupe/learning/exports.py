"""A model version's predictions out of Loupe, streamed as CSV or JSON lines while they are
read, so a large pool never has to fit in memory before the first byte leaves."""

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from loupe.csv_safe import csv_cell
from loupe.learning.models import ModelVersion
from loupe.tasktypes import task_type_of

_FLUSH_ROWS = 500


def predictions_csv(*, model_version: ModelVersion) -> Iterator[str]:
    """One row per prediction (the task type's columns); the probabilities are one column per
    class, `p_<class>`, in the version's class order."""
    kind = task_type_of(model_version.project)
    names = list(model_version.class_names)
    columns = [c for c in kind.prediction_fields if c != "probabilities"]
    header = columns + [f"p_{name}" for name in names]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_cell(cell) for cell in header])
    for i, row in enumerate(kind.prediction_rows(model_version=model_version), start=1):
        probabilities = row["probabilities"]
        cells = [_cell(row[c]) for c in columns] + [_cell(probabilities.get(n)) for n in names]
        writer.writerow(cells)
        if i % _FLUSH_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def predictions_jsonl(*, model_version: ModelVersion) -> Iterator[str]:
    """One JSON object per prediction, probabilities as {class name: p}."""
    lines = []
    for row in task_type_of(model_version.project).prediction_rows(model_version=model_version):
        row["scored_at"] = _timestamp(row["scored_at"])
        lines.append(json.dumps(row) + "\n")
        if len(lines) >= _FLUSH_ROWS:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


def _cell(value):
    # Class names are the project's to choose: text is defused (loupe.csv_safe).
    return _timestamp(value) if isinstance(value, datetime) else csv_cell(value)


def _timestamp(value: datetime) -> str:
    """ISO 8601, as the API writes it (UTC as Z)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
