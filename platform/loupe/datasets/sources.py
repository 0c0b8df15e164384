"""Where imported files come from: a server-side folder, a zip archive or a manifest.

Each source is a generator of `SourceEntry` (one file at a time), so an import never holds the
whole dataset in memory. Entries that cannot even be opened carry a `problem` instead of a
reader; the import turns them into rejections with that reason, as it does for an entry whose
reading fails (`EntryRejected`)."""

import csv
import functools
import json
import lzma
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from loupe.errors import ApplicationError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MANIFEST_SUFFIXES = {".csv", ".jsonl", ".ndjson"}
PATH_KEYS = ("path", "file", "filename", "image")
LABEL_KEYS = ("label", "class")
READ_BLOCK_BYTES = 1 << 20
# What reading one member of a damaged archive raises: a bad CRC or header (BadZipFile), a
# broken deflate, bzip2 or lzma stream, data cut short, an encryption or a method zipfile
# does not handle.
_MEMBER_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


class EntryRejected(Exception):
    """One entry cannot be imported; `reason` says why (the rest of the import goes on)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class SourceEntry:
    name: str
    label: str | None = None
    metadata: dict = field(default_factory=dict)
    opener: Callable[[], BinaryIO] | None = None
    problem: str = ""

    def read(self, *, max_bytes: int) -> bytes:
        """The entry's bytes, read in blocks that stop one byte past `max_bytes`: what a
        header or the file system says about its size is never trusted, so memory stays
        bounded by the limit. Raises `EntryRejected` with the reason it cannot be read."""
        if self.problem or self.opener is None:
            raise EntryRejected(self.problem or "nothing to read")
        blocks: list[bytes] = []
        size = 0
        try:
            with self.opener() as handle:
                while size <= max_bytes:
                    block = handle.read(min(READ_BLOCK_BYTES, max_bytes + 1 - size))
                    if not block:
                        break
                    blocks.append(block)
                    size += len(block)
        except OSError as exc:
            raise EntryRejected(f"unreadable: {exc.strerror or exc}") from None
        except _MEMBER_ERRORS as exc:
            raise EntryRejected(f"corrupt archive member: {exc}") from None
        if size > max_bytes:
            raise EntryRejected(f"file too large (over {size_in_words(max_bytes)})")
        return b"".join(blocks)


def size_in_words(size: int) -> str:
    """`2 GiB`, `50 MiB`, `1.5 KiB`, `300 bytes`."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def resolve_allowed(
    path: str | os.PathLike,
    roots: Sequence[str | os.PathLike],
    *,
    refused: Sequence[str | os.PathLike] = (),
    base_dir: str | os.PathLike | None = None,
) -> Path:
    """The real path, if it lies inside one of the allowed import roots and inside none of
    the `refused` folders (which win even when a root contains them).

    Symlinks and `..` are resolved first, so neither can escape a root. The refusal names the
    roots as `root_label` shows them, never by the server's full path."""
    real = Path(os.path.realpath(path))
    if not any(_inside(real, folder) for folder in refused):
        for root in roots:
            if _inside(real, root):
                return real
    labels = [root_label(root, base_dir=base_dir) for root in roots]
    raise ApplicationError(
        f"'{path}' is outside the allowed import folders ({', '.join(labels) or 'none'}).",
        code="path_not_allowed",
        status=403,
        extra={"allowed_roots": labels},
    )


def _inside(real: Path, folder: str | os.PathLike) -> bool:
    real_folder = Path(os.path.realpath(folder))
    return real == real_folder or real_folder in real.parents


def root_label(root: str | os.PathLike, *, base_dir: str | os.PathLike | None = None) -> str:
    """How an import root is shown to users: relative to the installation's folder when it
    lies inside it (`var/imports`), else by its own name."""
    path = Path(os.path.abspath(root))
    if base_dir is not None:
        base = Path(os.path.abspath(base_dir))
        if base in path.parents:
            return path.relative_to(base).as_posix()
    return path.name or path.as_posix()


def detect_kind(path: Path) -> str:
    if path.is_dir():
        return "folder"
    if path.suffix.lower() == ".zip":
        return "zip"
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return "manifest"
    raise ApplicationError(
        f"'{path.name}' is neither a folder, a .zip archive nor a .csv/.jsonl manifest."
    )


# --- folders ---------------------------------------------------------------------------------


def _is_candidate(name: str) -> bool:
    return not name.startswith(".")


def iter_folder(root: Path, *, refused: Sequence[str | os.PathLike] = ()) -> Iterator[SourceEntry]:
    """ImageFolder layout: files in `root/<class>/...` carry the class; files directly in
    `root` are unlabeled. Hidden files and the `refused` folders (where they lie inside
    `root`) are skipped; every other file is an entry (a non-image is rejected later with its
    reason)."""
    skip = _real_folders(refused)
    with os.scandir(root) as top:
        entries = sorted(top, key=lambda e: e.name)
    for entry in entries:
        if not _is_candidate(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            if os.path.realpath(entry.path) in skip:
                continue
            for dirpath, dirnames, filenames in os.walk(entry.path):
                dirnames[:] = sorted(
                    d for d in dirnames if _is_candidate(d) and not _skipped(dirpath, d, skip)
                )
                for filename in sorted(filenames):
                    if _is_candidate(filename):
                        full = Path(dirpath) / filename
                        yield _file_entry(full, root, label=entry.name)
        elif entry.is_file(follow_symlinks=False):
            yield _file_entry(Path(entry.path), root, label=None)
        else:
            yield SourceEntry(name=entry.name, problem="not a regular file (link or device)")


def _real_folders(folders: Sequence[str | os.PathLike]) -> set[str]:
    return {os.path.realpath(folder) for folder in folders}


def _skipped(dirpath: str, name: str, skip: set[str]) -> bool:
    return bool(skip) and os.path.realpath(os.path.join(dirpath, name)) in skip


def _file_entry(path: Path, root: Path, *, label: str | None) -> SourceEntry:
    name = str(path.relative_to(root))
    if path.is_symlink():
        return SourceEntry(name=name, problem="symbolic links are not followed")
    return SourceEntry(name=name, label=label, opener=functools.partial(open, path, "rb"))


def count_folder(root: Path, *, refused: Sequence[str | os.PathLike] = ()) -> int:
    skip = _real_folders(refused)
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if _is_candidate(d) and not _skipped(dirpath, d, skip)]
        total += sum(1 for f in filenames if _is_candidate(f))
    return total


# --- zip archives ----------------------------------------------------------------------------


def _zip_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [
        info
        for info in archive.infolist()
        if not info.is_dir() and not any(_hidden(p) for p in _parts(info))
    ]


def _hidden(part: str) -> bool:
    # ".." is not hidden: it is a traversal attempt, reported as such.
    return part.startswith("__MACOSX") or (part.startswith(".") and part not in (".", ".."))


def _parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    return PurePosixPath(info.filename.replace("\\", "/")).parts


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ApplicationError(f"'{path.name}' is not a readable zip archive: {exc}") from exc


def iter_zip(archive: zipfile.ZipFile) -> Iterator[SourceEntry]:
    """ImageFolder layout inside a zip (a single wrapping folder is ignored). Entries that try
    to leave the archive (absolute paths, `..`), are encrypted or use a compression method
    Loupe cannot read are rejected. Each entry is read as a stream (`SourceEntry.read`), never
    at the size its header claims. The caller keeps the archive open until every entry has
    been read."""
    members = _zip_members(archive)
    prefix = _common_prefix(members)
    for info in members:
        raw_name = info.filename
        parts = _parts(info)
        if problem := _member_problem(info):
            yield SourceEntry(name=raw_name, problem=problem)
            continue
        inner = parts[len(prefix) :]
        label = inner[0] if len(inner) >= 2 else None
        yield SourceEntry(
            name=raw_name,
            label=label,
            opener=functools.partial(archive.open, info),
        )


_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _member_problem(info: zipfile.ZipInfo) -> str:
    if _unsafe(info):
        return "unsafe path in archive (path traversal)"
    if info.flag_bits & 0x1:
        return "encrypted (password-protected) archive member"
    if info.compress_type not in _READABLE_METHODS:
        return f"unsupported compression method ({info.compress_type})"
    return ""


def _unsafe(info: zipfile.ZipInfo) -> bool:
    parts = _parts(info)
    return info.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]


def _common_prefix(members: list[zipfile.ZipInfo]) -> tuple[str, ...]:
    """One folder that wraps everything (`dataset/<class>/<file>`) is not a class."""
    safe = [m for m in members if not _unsafe(m)]
    tops = {_parts(m)[0] for m in safe if len(_parts(m)) > 1}
    flat = any(len(_parts(m)) == 1 for m in safe)
    if len(tops) == 1 and not flat:
        top = next(iter(tops))
        # Only strip it when there is structure beneath it, or it holds files directly.
        return (top,)
    return ()


def count_zip(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            return len(_zip_members(archive))
    except (zipfile.BadZipFile, OSError):
        return 0


# --- manifests -------------------------------------------------------------------------------


def iter_manifest(
    path: Path, *, roots: Sequence[str | os.PathLike], refused: Sequence[str | os.PathLike] = ()
) -> Iterator[SourceEntry]:
    """CSV (header row) or JSON Lines: a path column (`path`, `file`, `filename` or `image`),
    an optional `label`/`class`, and any other columns kept as metadata. Relative paths are
    read from the manifest's folder; paths outside the allowed roots, or inside a refused
    folder, are rejected."""
    for line_no, row in _manifest_rows(path):
        where = f"{path.name}:{line_no}"
        if isinstance(row, str):
            yield SourceEntry(name=where, problem=row)
            continue
        file_key = next((k for k in PATH_KEYS if row.get(k)), None)
        if file_key is None:
            yield SourceEntry(name=where, problem="row has no path")
            continue
        raw_path = str(row.pop(file_key))
        for key in PATH_KEYS:
            row.pop(key, None)
        label = None
        for key in LABEL_KEYS:
            value = row.pop(key, None)
            if value not in (None, "") and label is None:
                label = str(value)
        metadata = row.pop("metadata", None)
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        metadata.update({k: v for k, v in row.items() if v not in (None, "")})
        target = Path(raw_path) if os.path.isabs(raw_path) else path.parent / raw_path
        try:
            real = resolve_allowed(target, roots, refused=refused)
        except ApplicationError:
            yield SourceEntry(name=raw_path, problem="path outside the allowed import folders")
            continue
        if not real.is_file():
            yield SourceEntry(name=raw_path, problem="file not found or unreadable")
            continue
        yield SourceEntry(
            name=raw_path,
            label=label,
            metadata=metadata,
            opener=functools.partial(open, real, "rb"),
        )


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict | str]]:
    try:
        handle = open(path, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
    except OSError as exc:
        raise ApplicationError(f"Cannot read manifest '{path.name}': {exc.strerror}") from exc
    with handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not set(reader.fieldnames) & set(PATH_KEYS):
                raise ApplicationError(
                    f"Manifest '{path.name}' needs a header with a path column.",
                    extra={"path_columns": list(PATH_KEYS)},
                )
            try:
                for row in reader:
                    yield reader.line_num, {k: v for k, v in row.items() if k is not None}
            except (csv.Error, UnicodeDecodeError) as exc:
                yield reader.line_num, f"malformed CSV: {exc}"
            return
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, f"malformed JSON: {exc.msg}"
                continue
            yield line_no, row if isinstance(row, dict) else "a line must be a JSON object"


def count_manifest(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            lines = sum(1 for line in handle if line.strip())
    except OSError:
        return 0
    return max(0, lines - 1) if path.suffix.lower() == ".csv" else lines
