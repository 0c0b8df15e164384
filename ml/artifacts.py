"""The arrays that training, scoring, selection and drift exchange about items, and the file
they are kept in.

An artifact describes ``n`` items in one order: their ids, and any of per-item scores, class
probabilities (calibrated, and the model's own), embeddings, MC-dropout draws and
task-specific extras. Items run along the first axis of every array except the MC draws,
``(T, n, k)``, where they run along the second. This module is the one place that knows the
keys of the file and which axis holds the items: code elsewhere reads fields, and cuts or
joins artifacts with :meth:`ItemArrays.take` and :func:`concat`.

On disk an artifact is an uncompressed ``.npz`` archive with one array per field, under the
field's name (``item_ids``, ``scores``, ``probs``, ``raw_probs``, ``embeddings``,
``mc_probs``); an extra named ``x`` is kept as ``extra.x``. Archives written before extras
existed load as they are; a key this module does not know is read as an extra of that name.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import BinaryIO

import numpy as np

# The file name ending of an artifact in storage.
SUFFIX = ".npz"

_EXTRA_PREFIX = "extra."
# Dimensions of each named field; items are axis 0, except for the MC draws (axis 1).
_NDIM = {"scores": 1, "probs": 2, "raw_probs": 2, "embeddings": 2, "mc_probs": 3}
_ITEM_AXIS = {"mc_probs": 1}
FIELDS = ("item_ids", *_NDIM)


@dataclass(eq=False)
class ItemArrays:
    """Arrays about ``n`` items, validated on creation.

    ``item_ids (n,)`` int64, always there; optional ``scores (n,)`` (a strategy's per-item
    score), ``probs (n, k)`` (calibrated class probabilities), ``raw_probs (n, k)`` (the
    model's own), ``embeddings (n, d)``, ``mc_probs (T, n, k)`` (MC-dropout draws,
    calibrated like ``probs``) and ``extras``: named arrays of any shape whose first axis is
    the items (per-box or per-pair outputs of other task types). A field is None when the
    artifact does not hold it. Raises ValueError when an array has the wrong number of
    dimensions or another number of items than ``item_ids``.
    """

    item_ids: np.ndarray
    scores: np.ndarray | None = None
    probs: np.ndarray | None = None
    raw_probs: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    mc_probs: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = np.asarray(self.item_ids)
        if ids.ndim != 1:
            raise ValueError(f"item_ids must be one-dimensional (n,), got shape {ids.shape}")
        if ids.size and ids.dtype.kind not in "iu":
            raise ValueError(f"item_ids must be integers, got {ids.dtype}")
        self.item_ids = ids.astype(np.int64, copy=False)
        n = len(self.item_ids)
        for name, ndim in _NDIM.items():
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value)
            if value.ndim != ndim:
                raise ValueError(f"{name} must have {ndim} dimensions, got shape {value.shape}")
            axis = _ITEM_AXIS.get(name, 0)
            if value.shape[axis] != n:
                raise ValueError(
                    f"{name} has {value.shape[axis]} items (axis {axis} of shape "
                    f"{value.shape}), item_ids has {n}"
                )
            setattr(self, name, value)
        if (
            self.probs is not None
            and self.raw_probs is not None
            and self.probs.shape != self.raw_probs.shape
        ):
            raise ValueError(
                f"probs {self.probs.shape} and raw_probs {self.raw_probs.shape} differ in shape"
            )
        extras = {}
        for name, value in dict(self.extras).items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"an extra needs a non-empty name, got {name!r}")
            value = np.asarray(value)
            if value.ndim == 0 or value.shape[0] != n:
                raise ValueError(
                    f"extra {name!r} has shape {value.shape}: its first axis must be the {n} items"
                )
            extras[name] = value
        self.extras = extras

    def __len__(self) -> int:
        return len(self.item_ids)

    @classmethod
    def empty(cls, *, num_classes: int, embedding_dim: int = 0) -> ItemArrays:
        """No items: ids, probabilities ``(0, num_classes)`` and embeddings
        ``(0, embedding_dim)``, as a finished run that scored nothing reads."""
        return cls(
            item_ids=np.empty(0, dtype=np.int64),
            probs=np.empty((0, num_classes), dtype=np.float32),
            embeddings=np.empty((0, embedding_dim), dtype=np.float32),
        )

    def take(self, selection: np.ndarray | Sequence[int] | Sequence[bool]) -> ItemArrays:
        """The items picked by a boolean mask of length ``n`` or by integer positions (in
        the order given), every array cut along its item axis."""
        picked = np.asarray(selection)
        if picked.dtype == bool:
            if picked.shape != (len(self),):
                raise ValueError(
                    f"a mask over {len(self)} items must have shape ({len(self)},), "
                    f"got {picked.shape}"
                )
        elif picked.size == 0:
            picked = np.empty(0, dtype=np.intp)
        elif picked.dtype.kind not in "iu" or picked.ndim != 1:
            raise ValueError(
                f"take needs a boolean mask or one-dimensional integer positions, got "
                f"{picked.dtype} of shape {picked.shape}"
            )
        positions = np.flatnonzero(picked) if picked.dtype == bool else picked
        changes = {
            name: np.take(value, positions, axis=_ITEM_AXIS.get(name, 0))
            for name in FIELDS
            if (value := getattr(self, name)) is not None
        }
        changes["extras"] = {
            name: np.take(value, positions, axis=0) for name, value in self.extras.items()
        }
        return replace(self, **changes)


def concat(parts: Iterable[ItemArrays]) -> ItemArrays:
    """The parts' items one after the other (chunks of a scoring run, in order). A field or
    extra is kept when every part holds it, and left out otherwise (chunks written before
    it was kept)."""
    parts = list(parts)
    if not parts:
        raise ValueError("concat needs at least one artifact")
    joined = {
        name: np.concatenate([getattr(p, name) for p in parts], axis=_ITEM_AXIS.get(name, 0))
        for name in FIELDS
        if all(getattr(p, name) is not None for p in parts)
    }
    extras = {
        name: np.concatenate([p.extras[name] for p in parts])
        for name in parts[0].extras
        if all(name in p.extras for p in parts)
    }
    return ItemArrays(**joined, extras=extras)


def save(arrays: ItemArrays, file: str | os.PathLike | BinaryIO | None = None) -> bytes | None:
    """Writes the artifact to `file` (a path, written as named, or a binary file object);
    without one, returns its bytes."""
    named = {name: value for name in FIELDS if (value := getattr(arrays, name)) is not None}
    named.update({_EXTRA_PREFIX + name: value for name, value in arrays.extras.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **named)
    content = buffer.getvalue()
    if file is None:
        return content
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as handle:
            handle.write(content)
    else:
        file.write(content)
    return None


def load(
    source: bytes | bytearray | memoryview | str | os.PathLike | BinaryIO,
    *,
    require: Iterable[str] = (),
) -> ItemArrays:
    """Reads an artifact from bytes, a path or a binary file object (read whole).
    `require` names fields that must be there (e.g. ``("embeddings",)``); ValueError when
    one is missing, when the archive has no item ids or its arrays disagree on the items."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        content = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            content = handle.read()
    else:
        content = source.read()
    stored = np.load(io.BytesIO(content))
    if not isinstance(stored, np.lib.npyio.NpzFile):
        raise ValueError("an artifact is an npz archive, this is a single array")
    with stored:
        read = {key: stored[key] for key in stored.files}
    if "item_ids" not in read:
        raise ValueError(f"the artifact has no item_ids (keys: {sorted(read)})")
    named = {name: read.pop(name) for name in FIELDS if name in read}
    extras = {key.removeprefix(_EXTRA_PREFIX): value for key, value in read.items()}
    arrays = ItemArrays(**named, extras=extras)
    unknown = sorted(set(require) - set(FIELDS))
    if unknown:
        raise ValueError(f"no such field: {', '.join(unknown)}")
    missing = [name for name in require if getattr(arrays, name) is None]
    if missing:
        raise ValueError(f"the artifact has no {', '.join(missing)}")
    return arrays
