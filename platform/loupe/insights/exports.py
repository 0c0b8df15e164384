"""Ground truth out of Loupe, streamed: CSV, JSON lines, an ImageFolder zip
(`<split>/<class>/<file>`), and for detection projects COCO json and a YOLO folder zip,
written while it is sent, so a large project never has to fit in
memory or finish before the first byte leaves."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator

from django.core.files.storage import default_storage

from loupe.csv_safe import csv_cell
from loupe.errors import ApplicationError
from loupe.projects.models import Project
from loupe.tasktypes import task_type_of

EXPORT_SPLITS = ("train", "holdout", "pool")
_COPY_BYTES = 1 << 20


def ground_truth_rows(*, project: Project, split: str | None = None) -> Iterator[dict]:
    """Usable ground truth, item by item, as the project's task type exports it."""
    return task_type_of(project).ground_truth_rows(project=project, split=split)


def export_csv(*, project: Project, split: str | None = None) -> Iterator[str]:
    """Ground truth as CSV. File names, sources and class names are the users' to choose:
    a cell that would run as a spreadsheet formula is defused (loupe.csv_safe)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=task_type_of(project).ground_truth_fields)
    writer.writeheader()
    for i, row in enumerate(ground_truth_rows(project=project, split=split), start=1):
        writer.writerow({name: csv_cell(value) for name, value in row.items()})
        if i % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_jsonl(*, project: Project, split: str | None = None) -> Iterator[str]:
    lines = []
    for row in ground_truth_rows(project=project, split=split):
        lines.append(json.dumps(row) + "\n")
        if len(lines) >= 500:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


class _Sink(io.RawIOBase):
    """A write-only, non-seekable stream the zip is written into; what it holds is handed
    on and dropped after each file. zipfile writes data descriptors for such streams."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _safe(name: str) -> str:
    return re.sub(r"[^\w.\- ]+", "_", name).strip() or "_"


DETECTION = "object_detection"


def _boxes_only(project: Project, what: str) -> None:
    if project.task_type != DETECTION:
        raise ApplicationError(
            f"{what} exports boxes: only object_detection projects have them; this one is"
            f" {project.task_type}. Export CSV, JSON lines or an ImageFolder zip.",
        )


def export_coco(*, project: Project, split: str | None = None) -> Iterator[bytes]:
    """The boxes of a detection project as one COCO instances json, streamed."""
    from loupe.tasktypes.object_detection import coco_export

    _boxes_only(project, "COCO")
    return coco_export(project=project, split=split)


def export_yolo(*, project: Project, split: str | None = None) -> Iterator[bytes]:
    """A detection project's ground truth as a YOLO folder in a zip (`images/`, `labels/`,
    `data.yaml`), streamed page by page; a page file gone from storage is listed in
    MISSING.txt rather than cutting the download short."""
    from loupe.tasktypes.object_detection import yolo_entries

    _boxes_only(project, "YOLO")
    return _yolo_stream(yolo_entries(project=project, split=split))


def _yolo_stream(entries) -> Iterator[bytes]:
    return _zip_stream(
        ((path, text, stored, f"{path}\t{stored}") for path, text, stored in entries),
        missing_header="page\tfile",
    )


def _zip_stream(entries, *, missing_header: str) -> Iterator[bytes]:
    """A zip written while it is sent, from (path in the zip, text, storage name, line for
    MISSING.txt) entries: a text entry is written as it is, a stored file copied in blocks.
    One lost file must not cut a long download short: it is listed in MISSING.txt."""
    sink = _Sink()
    missing: list[str] = []
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for arcname, text, stored, missing_line in entries:
            if stored is None:
                archive.writestr(arcname, text or "")
                yield sink.take()
                continue
            try:
                source = default_storage.open(stored, "rb")
            except FileNotFoundError:
                missing.append(missing_line)
                continue
            with source, archive.open(arcname, mode="w") as target:
                while block := source.read(_COPY_BYTES):
                    target.write(block)
                    yield sink.take()
            yield sink.take()
        if missing:
            archive.writestr("MISSING.txt", f"{missing_header}\n" + "\n".join(missing) + "\n")
    yield sink.take()


def export_imagefolder(*, project: Project, split: str | None = None) -> Iterator[bytes]:
    """A zip of `<split>/<class>/<sha256>.<ext>`, the layout ImageFolder readers expect.
    Images are stored, not deflated: they are compressed already. A detection page has no
    one class: its export is COCO or YOLO."""
    if project.task_type == DETECTION:
        raise ApplicationError(
            "A detection page has no one class to file it under: export COCO json or a YOLO zip."
        )
    return _imagefolder_stream(project, split)


def _imagefolder_stream(project: Project, split: str | None) -> Iterator[bytes]:
    def entries():
        for row in ground_truth_rows(project=project, split=split):
            extension = row["file"].rsplit(".", 1)[-1] if "." in row["file"] else "bin"
            arcname = f"{_safe(row['split'])}/{_safe(row['label'])}/{row['sha256']}.{extension}"
            yield arcname, None, row["file"], f"{row['item_id']}\t{row['file']}"

    return _zip_stream(entries(), missing_header="item_id\tfile")
