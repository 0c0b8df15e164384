from ml.data import ImageFolderDataset
from ml.synthetic_faces import LOOKALIKE_TRAITS, make_faces_imagefolder


def read_all(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_faces_are_deterministic_by_seed_and_readable(tmp_path):
    info = make_faces_imagefolder(tmp_path / "a", identities=4, images_per_identity=3, seed=3)
    make_faces_imagefolder(tmp_path / "b", identities=4, images_per_identity=3, seed=3)
    make_faces_imagefolder(tmp_path / "c", identities=4, images_per_identity=3, seed=4)
    files = read_all(tmp_path / "a")
    assert len(files) == info["n_images"] == 12
    assert files == read_all(tmp_path / "b")
    assert files != read_all(tmp_path / "c")
    ds = ImageFolderDataset(tmp_path / "a", image_size=48)
    assert ds.classes == info["identities"]
    assert ds[0][0].shape == (3, 48, 48)


def test_images_of_one_identity_vary(tmp_path):
    make_faces_imagefolder(tmp_path, identities=2, images_per_identity=3, seed=0)
    ds = ImageFolderDataset(tmp_path, image_size=48)
    first, second = ds[0][0], ds[1][0]
    assert ds.targets[0] == ds.targets[1]
    assert float((first - second).abs().mean()) > 0.02


def test_lookalikes_share_all_but_one_or_two_traits(tmp_path):
    info = make_faces_imagefolder(
        tmp_path, identities=10, images_per_identity=1, lookalike_fraction=0.4, seed=1
    )
    assert len(info["lookalikes"]) == 4
    index = {name: i for i, name in enumerate(info["identities"])}
    for twin in info["lookalikes"]:
        a, b = info["traits"][index[twin["identity"]]], info["traits"][index[twin["of"]]]
        differing = [t for t in LOOKALIKE_TRAITS if a[t] != b[t]]
        assert 1 <= len(differing) <= 2
        assert sorted(differing) == sorted(twin["changed"])
    # Identities drawn independently differ in most trait groups.
    independent = [
        n for n in info["identities"] if n not in {t["identity"] for t in info["lookalikes"]}
    ]
    a, b = (info["traits"][index[n]] for n in independent[:2])
    assert sum(a[t] != b[t] for t in LOOKALIKE_TRAITS) >= 5
