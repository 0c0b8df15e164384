"""python manage.py loupe_import PROJECT PATH — import a folder, zip or manifest, with a
progress bar. Runs in this process by default; --background hands it to a worker and follows
its progress."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from loupe.datasets.models import ImportJob, JobStatus
from loupe.datasets.selectors import import_rejections
from loupe.datasets.services import import_job_create, import_job_run
from loupe.errors import ApplicationError
from loupe.projects.models import Project
from loupe.runs import run_follow


class Command(BaseCommand):
    help = "Import images into a project from a folder (ImageFolder or flat), a zip or a manifest."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("path", help="folder, .zip, .csv or .jsonl inside the import roots")
        parser.add_argument("--source", default="", help="source tag (default: the path's name)")
        parser.add_argument("--holdout-fraction", type=float, default=None)
        parser.add_argument("--background", action="store_true", help="run on a worker")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project '{options['project']}'.")
        try:
            job = import_job_create(
                project=project,
                path=options["path"],
                source_tag=options["source"],
                holdout_fraction=options["holdout_fraction"],
                enqueue=options["background"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        bar = tqdm(desc=f"import {job.pk}", unit="file", disable=options["verbosity"] == 0)

        def show(current: ImportJob) -> None:
            if current.total is not None:
                bar.total = current.total
            bar.n = current.processed
            bar.set_postfix(imported=current.imported, rejected=current.rejected, refresh=False)
            bar.refresh()

        if options["background"]:
            job = run_follow(job, show=show)
        else:
            job = import_job_run(import_job_id=job.pk, progress=show)
        bar.close()
        self._report(job)
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Import {job.pk} {job.status}: {job.error}")

    def _report(self, job):
        self.stdout.write(
            f"import {job.pk}: {job.imported} imported ({job.labeled} with labels), "
            f"{job.duplicates} duplicates, {job.rejected} rejected"
        )
        for rejection in import_rejections(job=job, limit=20):
            self.stdout.write(f"  rejected {rejection.path}: {rejection.reason}")
        if job.rejected > 20:
            self.stdout.write(f"  ... and {job.rejected - 20} more (GET /api/v1/imports/{job.pk}/)")
