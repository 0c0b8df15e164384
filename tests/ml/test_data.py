import json

import numpy as np
import pytest
import torch
from PIL import Image

from ml.data import (
    ImageFolderDataset,
    ImageReadError,
    ManifestDataset,
    load_image,
    load_tensors,
    window_around,
)


def save_rgb(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode="RGB").save(path)
    return path


def gradient_image(width=100, height=80):
    """Pixel (x, y) has red = x and green = y, so a crop's position is readable from it."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:, :, 0] = np.arange(width)[None, :]
    img[:, :, 1] = np.arange(height)[:, None]
    return img


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls, n in {"good": 5, "scratch": 2}.items():
        for i in range(n):
            save_rgb(tmp_path / cls / f"{i}.png", rng.integers(0, 255, (20, 30, 3)))
    (tmp_path / "good" / "notes.txt").write_text("not an image")
    (tmp_path / "good" / ".hidden.png").write_bytes(b"")
    return tmp_path


def test_image_folder_reads_classes_labels_and_rescales(folder):
    ds = ImageFolderDataset(folder, image_size=16)
    assert ds.classes == ["good", "scratch"]
    assert len(ds) == 7
    assert ds.class_counts().tolist() == [5, 2]
    x, y = ds[6]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y == 1
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_explicit_class_order_and_grayscale(folder):
    ds = ImageFolderDataset(folder, classes=["scratch", "good", "dent"], image_size=8, mode="L")
    assert ds.targets.tolist() == [0, 0, 1, 1, 1, 1, 1]
    assert ds.class_counts().tolist() == [2, 5, 0]
    assert ds[0][0].shape == (1, 8, 8)


def test_a_corrupt_file_is_rejected_with_a_clear_error(folder):
    bad = folder / "scratch" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    ds = ImageFolderDataset(folder, image_size=16)
    index = [str(p) for p in ds.paths].index(str(bad))
    with pytest.raises(ImageReadError, match="broken.png"):
        ds[index]
    assert [path for path, _ in ds.verify()] == [str(bad)]


def test_a_truncated_file_is_rejected(tmp_path):
    path = save_rgb(tmp_path / "a.png", gradient_image())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageReadError, match="a.png"):
        load_image(path, image_size=16)


def test_empty_or_missing_folders_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ImageFolderDataset(tmp_path / "nope")
    (tmp_path / "good").mkdir()
    with pytest.raises(ValueError, match="no images"):
        ImageFolderDataset(tmp_path)


def test_crop_keeps_the_native_pixel_scale(tmp_path):
    source = gradient_image()
    path = save_rgb(tmp_path / "part.png", source)
    roi = (40, 30, 50, 40)  # a 10 px defect centred at (45, 35)
    x = load_image(path, image_size=16, crop_box=roi)
    assert x.shape == (3, 16, 16)
    pixels = (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    # The window is cut, not resampled: every pixel is the original one at its place.
    np.testing.assert_array_equal(pixels, source[27:43, 37:53])


def test_crop_window_stays_inside_the_image_near_its_border():
    assert window_around((0, 0, 4, 4), 16, (100, 80)) == (0, 0, 16, 16)
    assert window_around((96, 76, 100, 80), 16, (100, 80)) == (84, 64, 100, 80)
    # Only an image smaller than the window gets padded.
    assert window_around((0, 0, 10, 10), 16, (10, 10)) == (-3, -3, 13, 13)


def test_center_crop_versus_rescale(tmp_path):
    source = gradient_image()
    path = save_rgb(tmp_path / "part.png", source)
    centre = load_image(path, image_size=(20, 10), crop_box="center")
    assert centre.shape == (3, 20, 10)
    pixels = (centre.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(pixels, source[30:50, 45:55])
    rescaled = load_image(path, image_size=10)
    assert rescaled.shape == (3, 10, 10)
    assert rescaled[0, 0, -1] * 255 > 90  # the right edge (red = 99) is now in view


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    arr = np.full((8, 8), 32768, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    x = load_image(tmp_path / "deep.png", image_size=8, mode="L")
    assert x.mean().item() == pytest.approx(0.5, abs=0.01)


def test_csv_manifest_with_roi_and_unlabeled_rows(tmp_path):
    save_rgb(tmp_path / "img" / "a.png", gradient_image())
    save_rgb(tmp_path / "img" / "b.png", gradient_image())
    (tmp_path / "m.csv").write_text(
        'path,label,roi\nimg/a.png,dent,"40,30,50,40"\nimg/b.png,,\n', encoding="utf-8"
    )
    ds = ManifestDataset(tmp_path / "m.csv", image_size=16, crop="roi", classes=["good", "dent"])
    assert ds.targets.tolist() == [1, -1]
    assert ds.class_counts().tolist() == [0, 1]
    x, _ = ds[0]
    assert round(x[0, 0, 0].item() * 255) == 37  # window starts at x = 37
    x, y = ds[1]  # no ROI: centred window
    assert y == -1 and round(x[0, 0, 0].item() * 255) == 42


def test_jsonl_manifest_with_root_and_roi_columns(tmp_path):
    save_rgb(tmp_path / "data" / "a.png", gradient_image())
    rows = [{"image": "a.png", "label": "x", "roi": [0, 0, 4, 4]}]
    rows.append({"image": "a.png", "label": "y", **dict.fromkeys(("roi_left", "roi_top"), 90)})
    rows[1].update(roi_right=100, roi_bottom=100)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = ManifestDataset(manifest, root=tmp_path / "data", image_size=8, crop="roi")
    assert ds.classes == ["x", "y"]
    assert ds.rois == [(0, 0, 4, 4), (90, 90, 100, 100)]
    assert ds[1][0].shape == (3, 8, 8)


def test_manifest_errors_are_specific(tmp_path):
    (tmp_path / "m.csv").write_text("path,label\na.png,cat\n")
    with pytest.raises(ValueError, match="not in classes"):
        ManifestDataset(tmp_path / "m.csv", classes=["dog"])
    (tmp_path / "n.csv").write_text("name,label\na.png,cat\n")
    with pytest.raises(ValueError, match="column"):
        ManifestDataset(tmp_path / "n.csv")
    (tmp_path / "r.csv").write_text('path,label,roi\na.png,cat,"1,2,3"\n')
    with pytest.raises(ValueError, match="row 1"):
        ManifestDataset(tmp_path / "r.csv")


def test_subset_keeps_labels_and_load_tensors_stacks(folder):
    ds = ImageFolderDataset(folder, image_size=8).subset([0, 5, 6])
    assert ds.targets.tolist() == [0, 1, 1]
    x, y = load_tensors(ds, batch_size=2)
    assert x.shape == (3, 3, 8, 8) and y.tolist() == [0, 1, 1]
