import numpy as np
import pytest

from ml.data import ImageFolderDataset, ManifestDataset
from ml.synthetic import load_digits_arrays, make_digits_imagefolder, make_inspection_dataset


def test_digits_arrays_are_imbalanced_scaled_and_deterministic():
    x, y = load_digits_arrays((3, 8), 0.05, seed=0)
    counts = np.bincount(y, minlength=10)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (len(y), 64)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert counts[3] == counts[8] == 9
    assert counts.max() / counts[3] >= 19  # about 20:1
    x2, y2 = load_digits_arrays((3, 8), 0.05, seed=0)
    np.testing.assert_array_equal(x, x2)
    x3, _ = load_digits_arrays((3, 8), 0.05, seed=1)
    assert not np.array_equal(x, x3)


def test_digits_imagefolder_is_readable(tmp_path):
    info = make_digits_imagefolder(tmp_path, rare_classes=(1,), rare_fraction=0.1, image_size=16)
    ds = ImageFolderDataset(tmp_path, classes=info["classes"], image_size=16, mode="L")
    assert len(ds) == info["n_images"]
    assert ds.class_counts()[1] == info["class_counts"]["1"] == 18
    assert ds[0][0].shape == (1, 16, 16)


def read_all(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_inspection_set_is_deterministic_by_seed(tmp_path):
    a = make_inspection_dataset(tmp_path / "a", n_images=40, image_size=32, seed=7)
    make_inspection_dataset(tmp_path / "b", n_images=40, image_size=32, seed=7)
    make_inspection_dataset(tmp_path / "c", n_images=40, image_size=32, seed=8)
    files_a = read_all(tmp_path / "a")
    assert len(files_a) == a["n_images"] == 40
    assert files_a == read_all(tmp_path / "b")
    assert files_a != read_all(tmp_path / "c")


def test_inspection_set_is_imbalanced_with_every_defect_present(tmp_path):
    info = make_inspection_dataset(tmp_path, n_images=100, image_size=32, seed=0)
    ds = ImageFolderDataset(tmp_path, classes=info["classes"], image_size=32)
    counts = dict(zip(info["classes"], ds.class_counts().tolist(), strict=True))
    assert counts == info["class_counts"]
    assert counts["good"] >= 5 * max(counts["scratch"], counts["dent"], counts["stain"])
    assert min(counts.values()) >= 1
    roi_set = ManifestDataset(info["manifest"], classes=info["classes"], image_size=16, crop="roi")
    has_roi = [r is not None for r in roi_set.rois]
    assert has_roi == [t != 0 for t in roi_set.targets]  # defects carry a box, good parts none
    assert roi_set[0][0].shape == (3, 16, 16)


def test_inspection_class_counts_can_be_set_exactly(tmp_path):
    info = make_inspection_dataset(
        tmp_path, image_size=16, class_counts={"good": 6, "dent": 2}, seed=0
    )
    assert info["class_counts"] == {"good": 6, "scratch": 0, "dent": 2, "stain": 0}
    assert len(list(tmp_path.rglob("*.png"))) == 8
    with pytest.raises(ValueError):
        make_inspection_dataset(tmp_path, class_counts={"crack": 3})
