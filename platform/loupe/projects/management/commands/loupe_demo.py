"""python manage.py loupe_demo — creates the demo users and project and imports generated data
(through a worker with --background, else in this process), with progress bars."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from tqdm import tqdm

from loupe.datasets.services import import_job_run
from loupe.projects.demo import DATASETS, DEFAULT_IMAGES, demo_project_create
from loupe.runs import run_follow


class Command(BaseCommand):
    help = (
        "Create the demo project and its users: generated, class-imbalanced images"
        " (inspection, digits), synthetic faces to match in pairs (faces), or score pages"
        " whose tiny symbols are boxed (scores)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", choices=DATASETS, default="inspection")
        parser.add_argument(
            "--images",
            type=int,
            default=None,
            help="images to generate (default: "
            + ", ".join(f"{n} for {d}" for d, n in DEFAULT_IMAGES.items() if d != "digits")
            + "; digits has its own 1797)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--background", action="store_true", help="import on a worker")
        parser.add_argument(
            "--label-studio", action="store_true", help="link the project to Label Studio"
        )
        parser.add_argument(
            "--start-loop",
            action="store_true",
            help="start the first train -> score -> select loop on the workers",
        )

    def handle(self, *args, **options):
        password = self._password()
        project, jobs = demo_project_create(
            dataset=options["dataset"],
            root=settings.LOUPE_DEMO_DIR,
            n_images=options["images"],
            seed=options["seed"],
            password=password,
            enqueue=options["background"],
        )
        for job in jobs:
            with tqdm(desc=f"import {job.source_tag}", unit="file") as bar:

                def show(current, bar=bar):
                    bar.total = current.total
                    bar.n = current.processed
                    bar.refresh()

                if options["background"]:
                    job = run_follow(job, show=show)
                else:
                    job = import_job_run(import_job_id=job.pk, progress=show)
            self.stdout.write(
                f"  {job.source_tag}: {job.status}, {job.imported} new, "
                f"{job.duplicates} already there, {job.rejected} rejected"
            )
        if options["label_studio"]:
            self._link_label_studio(project)
        if options["start_loop"]:
            from loupe.learning.loop import loop_start

            loop, _ = loop_start(project=project)
            self.stdout.write(f"First loop {loop.pk} started on the workers (Models page).")
        self.stdout.write(self.style.SUCCESS(f"Demo project '{project.slug}' is ready."))
        self.stdout.write(f"Users (password '{password}'): admin, engineer, expert, manager")

    def _link_label_studio(self, project) -> None:
        from loupe.labeling.services import project_sync

        try:
            ls_project_id = project_sync(project=project)
        except Exception as exc:  # Label Studio down or refusing: the demo goes on
            self.stdout.write(f"Label Studio link failed, Loupe runs without it: {exc}")
            return
        self.stdout.write(f"Linked to Label Studio project {ls_project_id}.")

    def _password(self) -> str:
        path = settings.LOUPE_DEMO_DIR.parent.parent / "demo-password.txt"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        password = "loupe-" + secrets.token_hex(4)
        path.write_text(password + "\n")
        return password
