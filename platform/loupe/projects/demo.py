"""The demo project: a generated, class-imbalanced inspection data set (good parts vs rare
scratches, dents and stains on scikit-image's CC0 textures), sklearn's digits with two rare
classes, synthetic faces for pair verification (some people filed by identity, the other
photos loose), or synthetic printed score pages for detecting tiny symbols (a few pages
with their boxes, the rest to label, a quarter of them scanned). Everything is generated on
the fly, deterministic by seed; nothing is downloaded."""

import csv
import shutil
from pathlib import Path

import numpy as np
from django.db import transaction

from loupe.accounts.models import Role
from loupe.accounts.services import membership_set, user_create
from loupe.datasets.models import ImportJob
from loupe.datasets.services import import_job_create
from loupe.projects.models import Project
from loupe.projects.services import project_create

DATASETS = ("inspection", "digits", "faces", "scores")
# Images generated when none is asked for (digits has its fixed 1797).
DEFAULT_IMAGES = {"inspection": 1200, "digits": 1200, "faces": 240, "scores": 60}
# Score pages: the share that comes with its boxes, the share scanned (rotation, blur,
# noise, uneven light: the covariate shift), and the boxes wanted per class.
SCORES_LABELED_FRACTION = 0.25
SCORES_SCANNED_FRACTION = 0.25
SCORES_TARGET_BOXES = 200
SCORES_GUIDELINES = (
    "Draw a tight box around every symbol and choose its class. Sharps and flats right after "
    "the clef, before any note, are the key signature (keySharp, keyFlat); one in front of a "
    "notehead is an accidental (accidentalSharp, accidentalFlat, accidentalNatural). A dot "
    "to the right of a notehead is an augmentationDot; one above or below it is a "
    "staccatoDot. Correct the model's boxes rather than drawing them again: move, resize, "
    "relabel or delete them, and add the ones it missed."
)
INSPECTION_TARGETS = {"good": 300, "scratch": 120, "dent": 120, "stain": 120}
# Faces: photos per person, the share of people whose photos come filed under their identity
# (they become labeled pairs), and the pixel size the photos are drawn at.
FACES_PER_IDENTITY = 6
FACES_KNOWN_FRACTION = 0.5
FACES_PX = 48
FACES_TARGETS = {"different": 300, "same": 300}
FACES_GUIDELINES = (
    "Do the two photos show the same person? Compare the face itself: its shape, the eyes, "
    "nose, mouth and brows. Light, background, expression, a small turn of the head and a "
    "hand or object in front of the face change from photo to photo of one person; glasses "
    "and hair may too. Some people look alike on purpose: look for the one feature that "
    "differs. Answer 'can't tell' when the photos do not show enough to decide."
)
GUIDELINES = (
    "Look at the whole part. Choose 'scratch' for a thin bright or dark line, 'dent' for a "
    "small shaded pit, 'stain' for a large discoloured blob, and 'good' only when none is "
    "visible. Loupe shows you the items it is least sure about first: the model's guess may be "
    "wrong, so judge the image, not the suggestion."
)


def demo_data_generate(*, dataset: str, root: Path, n_images: int, seed: int) -> dict:
    """Writes the demo images under `root` (skipped when already there) and two manifests:
    a small labeled seed set and the unlabeled pool; for faces, one folder of identity
    folders and loose photos instead (`folder`)."""
    from ml import synthetic

    root.mkdir(parents=True, exist_ok=True)
    marker = root / f"{dataset}-{n_images}-{seed}.done"
    images = root / dataset
    if dataset == "faces":
        if not marker.exists():
            _faces_generate(images, n_images=n_images, seed=seed)
            marker.touch()
        return {"classes": ["different", "same"], "folder": images}
    if dataset == "scores":
        if not marker.exists():
            _scores_generate(images, n_pages=n_images, seed=seed)
            marker.touch()
        return {"folder": images}
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


def _faces_generate(folder: Path, *, n_images: int, seed: int) -> None:
    """Synthetic people, FACES_PER_IDENTITY photos each (`ml.synthetic_faces`): a share of
    them filed as `folder/<identity>/<photo>` (known people: labeled pairs at import), the
    photos of the others loose at the top of the folder under shuffled neutral names
    (`photo-0001.png`, ...), so neither their names nor their order gives a person away."""
    from ml.synthetic_faces import make_faces_imagefolder

    if folder.exists():  # another seed or size wrote it: start afresh
        shutil.rmtree(folder)
    identities = max(5, n_images // FACES_PER_IDENTITY)
    made = make_faces_imagefolder(
        folder,
        identities=identities,
        images_per_identity=FACES_PER_IDENTITY,
        image_size=FACES_PX,
        seed=seed,
    )
    rng = np.random.default_rng([seed, 17])
    people = made["identities"]
    n_known = max(5, round(FACES_KNOWN_FRACTION * len(people)))
    unknown = sorted(rng.permutation(len(people))[n_known:].tolist())
    loose = [path for i in unknown for path in sorted((folder / people[i]).iterdir())]
    for number, index in enumerate(rng.permutation(len(loose)).tolist(), start=1):
        loose[index].rename(folder / f"photo-{number:04d}.png")
    for i in unknown:
        (folder / people[i]).rmdir()


def _scores_generate(folder: Path, *, n_pages: int, seed: int) -> None:
    """Score pages with their boxes as COCO (`ml.synthetic_scores`), then the boxes of all
    but SCORES_LABELED_FRACTION of the clean pages taken out: those pages join the pool
    (scanned pages included), to be labeled in Label Studio."""
    import json

    from ml.synthetic_scores import make_score_pages

    if folder.exists():
        shutil.rmtree(folder)
    make_score_pages(folder, pages=n_pages, scanned_fraction=SCORES_SCANNED_FRACTION, seed=seed)
    path = folder / "annotations.json"
    coco = json.loads(path.read_text())
    clean = [image["id"] for image in coco["images"] if not image.get("scanned")]
    labeled = set(clean[: max(4, round(SCORES_LABELED_FRACTION * n_pages))])
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in labeled]
    path.write_text(json.dumps(coco))


def demo_images(dataset: str, n_images: int | None) -> int:
    """The number of images to generate: the one asked for, else the dataset's default."""
    return DEFAULT_IMAGES.get(dataset, 1200) if n_images is None else n_images


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
    n_images: int | None = None,
    seed: int = 0,
    password: str,
    enqueue: bool = True,
) -> tuple[Project, list[ImportJob]]:
    """Creates (or finds) the demo project and its users, and queues the imports of the
    generated data (`n_images` None: the dataset's default). Running it again changes
    nothing."""
    n_images = demo_images(dataset, n_images)
    data = demo_data_generate(dataset=dataset, root=root, n_images=n_images, seed=seed)
    slug = f"demo-{dataset}"
    users = _demo_users(password)
    if dataset == "faces":
        return _faces_project(slug, users, data, enqueue=enqueue)
    if dataset == "scores":
        return _scores_project(slug, users, data, enqueue=enqueue)
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


def _faces_project(slug: str, users: dict, data: dict, *, enqueue: bool):
    """The pair verification demo: one import of the faces folder, whose identity folders
    become labeled pairs (whole people held out) and whose loose photos pool pairs."""
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        project = project_create(
            name="Demo: face matching",
            slug=slug,
            created_by=users["admin"],
            task_type="pair_verification",
            classes=[{"name": c, "target_count": FACES_TARGETS[c]} for c in data["classes"]],
            description=(
                "Generated demo data: synthetic faces. Half the people come filed by name"
                " (labeled pairs); the others' photos are loose, and Loupe asks whether two of"
                " them show the same person."
            ),
            guidelines=FACES_GUIDELINES,
            image_size=FACES_PX,
            batch_size=20,
        )
    for role in (Role.ENGINEER, Role.EXPERT, Role.MANAGER):
        membership_set(project=project, user=users[role], role=role)
    job = import_job_create(
        project=project,
        path=str(data["folder"]),
        created_by=users["admin"],
        source_tag="gate-a",
        enqueue=enqueue,
    )
    return project, [job]


def _scores_project(slug: str, users: dict, data: dict, *, enqueue: bool):
    """The detection demo: one import of the score pages folder (COCO), whose classes the
    project takes; the pages with boxes are its labeled seed."""
    from ml.synthetic_scores import CLASSES

    project = Project.objects.filter(slug=slug).first()
    if project is None:
        project = project_create(
            name="Demo: music score symbols",
            slug=slug,
            created_by=users["admin"],
            task_type="object_detection",
            classes=[{"name": c, "target_count": SCORES_TARGET_BOXES} for c in CLASSES],
            description=(
                "Generated demo data: printed score pages with symbols of a few pixels, some"
                " told apart only by where they stand; a quarter of the pages are scanned."
            ),
            guidelines=SCORES_GUIDELINES,
            batch_size=4,
            holdout_fraction=0.25,
        )
    for role in (Role.ENGINEER, Role.EXPERT, Role.MANAGER):
        membership_set(project=project, user=users[role], role=role)
    job = import_job_create(
        project=project,
        path=str(data["folder"]),
        created_by=users["admin"],
        source_tag="scanner-a",
        enqueue=enqueue,
    )
    return project, [job]


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
