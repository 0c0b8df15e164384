import pytest

from loupe.datasets.services import import_job_create, import_job_run
from loupe.projects.services import project_create


@pytest.fixture
def inspection_project(import_root):
    """A small generated inspection project: 10% labeled (some in the holdout), the rest
    an unlabeled pool."""
    from ml.synthetic import make_inspection_dataset

    make_inspection_dataset(
        import_root / "set",
        n_images=160,
        image_size=32,
        seed=3,
        class_counts={"good": 100, "scratch": 24, "dent": 20, "stain": 16},
    )
    project = project_create(
        name="Line",
        created_by=None,
        classes=["good", "scratch", "dent", "stain"],
        image_size=32,
        batch_size=12,
        train_epochs=3,
        control_fraction=0.25,
    )
    manifest_lines = ["path,label"]
    pool_lines = ["path"]
    for i, line in enumerate((import_root / "set" / "manifest.csv").read_text().splitlines()[1:]):
        path, label = line.split(",")[:2]
        (manifest_lines if i % 3 == 0 else pool_lines).append(
            f"set/{path},{label}" if i % 3 == 0 else f"set/{path}"
        )
    (import_root / "labeled.csv").write_text("\n".join(manifest_lines) + "\n")
    (import_root / "pool.csv").write_text("\n".join(pool_lines) + "\n")
    for name, holdout in (("labeled.csv", 0.3), ("pool.csv", 0.0)):
        job = import_job_create(
            project=project, path=str(import_root / name), enqueue=False, holdout_fraction=holdout
        )
        assert import_job_run(import_job_id=job.pk).rejected == 0
    return project
