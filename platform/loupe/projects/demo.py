"""The demo project: a generated, class-imbalanced inspection data set (good parts vs rare
scratches, dents and stains on scikit-image's CC0 textures), or sklearn's digits with two rare
classes. Everything is generated on the fly, deterministic by seed; nothing is downloaded."""

import csv
from pathlib import Path

import numpy as np
from django.db import transaction

from loupe.accounts.models import Role
from loupe.accounts.services import membership_set, user_create
from loupe.datasets.models import ImportJob
from loupe.datasets.services import import_job_create
from loupe.projects.models import Project
from loupe.projects.services import project_create

DATASETS = ("inspection", "digits")
INSPECTION_TARGETS = {"good": 300, "scratch": 120, "dent": 120, "stain": 120}
GUIDELINES = (
    "Look at the whole part. Choose 'scratch' for a thin bright or dark line, 'dent' for a "
    "small shaded pit, 'stain' for a large discoloured blob, and 'good' only when none is "
    "visible. Loupe shows you the items it is least sure about first: the model's guess may be "
    "wrong, so judge the image, not the suggestion."
)


def demo_data_generate(*, dataset: str, root: Path, n_images: int, seed: int) -> dict:
    """Writes the demo images under `root` (skipped when already there) and two manifests:
    a small labeled seed set and the unlabeled pool."""
    from ml import synthetic

    root.mkdir(parents=True, exist_ok=True)
    marker = root / f"{dataset}-{n_images}-{seed}.done"
    images = root / dataset
    if dataset == "inspection":
        if not marker.exists():
            synthetic.make_inspection_dataset(images, n_images=n_images, seed=seed)
    elif dataset == "digits":
        if not marker.exists():
            synthetic.make_digits_imagefolder(images, seed=seed)
    else:
        raise ValueError(f"unknown demo dataset {dataset!r}; choose one of {DATASETS}")
    marker.touch()
    return _split_manifests(images, root, seed=seed)


def _split_manifests(images: Path, root: Path, *, seed: int) -> dict:
    """10% of every class (at least 3) becomes the labeled seed; the rest is the pool."""
    rng = np.random.default_rng(seed)
    classes = sorted(p.name for p in images.iterdir() if p.is_dir())
    labeled_rows, pool_rows = [], []
    for label in classes:
        files = sorted((images / label).glob("*.png"))
        order = rng.permutation(len(files))
        n_seed = max(3, len(files) // 10)
        for rank, index in enumerate(order):
            rel = files[index].relative_to(root).as_posix()
            camera = f"camera-{1 + int(index) % 2}"
            if rank < n_seed:
                labeled_rows.append([rel, label, camera])
            else:
                pool_rows.append([rel, "", camera])
    rng.shuffle(pool_rows)
    labeled, pool = root / "labeled.csv", root / "pool.csv"
    for path, rows in ((labeled, labeled_rows), (pool, pool_rows)):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label", "camera"])
            writer.writerows(rows)
    return {"classes": classes, "labeled": labeled, "pool": pool}


@transaction.atomic
def demo_project_create(
    *,
    dataset: str,
    root: Path,
    n_images: int = 1200,
    seed: int = 0,
    password: str,
    enqueue: bool = True,
) -> tuple[Project, list[ImportJob]]:
    """Creates (or finds) the demo project and its users, and queues the imports of the
    generated data. Running it again changes nothing."""
    data = demo_data_generate(dataset=dataset, root=root, n_images=n_images, seed=seed)
    slug = f"demo-{dataset}"
    users = _demo_users(password)
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        classes = [
            {"name": c, "target_count": INSPECTION_TARGETS.get(c, 100)} for c in data["classes"]
        ]
        project = project_create(
            name="Demo: surface inspection" if dataset == "inspection" else "Demo: rare digits",
            slug=slug,
            created_by=users["admin"],
            classes=classes,
            description="Generated demo data: mostly good parts, few defects, as on a real line.",
            guidelines=GUIDELINES if dataset == "inspection" else "Choose the digit you see.",
            batch_size=40,
        )
    for role in (Role.ENGINEER, Role.EXPERT, Role.MANAGER):
        membership_set(project=project, user=users[role], role=role)
    jobs = [
        import_job_create(
            project=project,
            path=str(data["labeled"]),
            created_by=users["admin"],
            source_tag="seed-labels",
            enqueue=enqueue,
        ),
        import_job_create(
            project=project,
            path=str(data["pool"]),
            created_by=users["admin"],
            source_tag="line-a",
            enqueue=enqueue,
        ),
    ]
    return project, jobs


def _demo_users(password: str) -> dict:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    users = {}
    for name, role in (
        ("admin", Role.ADMIN),
        ("engineer", Role.ENGINEER),
        ("expert", Role.EXPERT),
        ("manager", Role.MANAGER),
    ):
        user = User.objects.filter(username=name).first()
        if user is None:
            user = user_create(
                username=name, password=password, role=role, is_superuser=role == Role.ADMIN
            )
        users["admin" if role == Role.ADMIN else role] = user
    return users
