"""python manage.py loupe_train PROJECT — train, score the pool and select the next batch,
with a progress bar per step. Runs in this process by default; --background hands the loop
to the workers and follows its progress."""

import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import override_settings
from tqdm import tqdm

from loupe.learning.loop import loop_start
from loupe.learning.models import ACTIVE_STATUSES, LearningLoop, RunStatus
from loupe.projects.models import Project
from loupe.runs import run_follow
from loupe.tasktypes import task_type_of

STEPS = ("train", "score", "select")


class Command(BaseCommand):
    help = "Run the active-learning loop (train -> score -> select) for a project."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("--background", action="store_true", help="run on the workers")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project '{options['project']}'.")
        if options["background"]:
            loop, created = loop_start(project=project)
        else:
            loop, created = self._start_here(project)
        if not created:
            self.stdout.write(f"Loop {loop.pk} is already running; following it.")
        loop = self._follow(loop, disable=options["verbosity"] == 0)
        self._report(loop)
        if loop.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Loop {loop.pk} {loop.status}: {loop.error}")

    def _start_here(self, project):
        """Runs the loop's jobs in a thread of this process while the bars follow it."""
        result = {}

        def work():
            with override_settings(LOUPE_JOBS_EAGER=True):
                try:
                    result["loop"] = loop_start(project=project)
                finally:
                    connection.close()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        while thread.is_alive():
            active = LearningLoop.objects.filter(project=project, status__in=ACTIVE_STATUSES)
            if active.exists():
                return active.first(), True
            time.sleep(0.2)
        return result["loop"]

    def _follow(self, loop, *, disable):
        bars = {}

        def show(current: LearningLoop) -> None:
            parts = {"train": current.training_run, "score": current.scoring_run}
            for step, run in parts.items():
                if run is None:
                    continue
                bar = bars.get(step) or tqdm(total=100, desc=step, unit="%", disable=disable)
                bars[step] = bar
                bar.n = round(run.progress * 100)
                bar.set_postfix_str(run.phase, refresh=False)
                bar.refresh()

        loop = run_follow(loop, show=show)
        for bar in bars.values():
            bar.close()
        return loop

    def _report(self, loop):
        version = getattr(loop.training_run, "model_version", None) if loop.training_run else None
        if version is not None:
            summary = task_type_of(loop.project).holdout_summary(
                version.metrics or {}, version.baseline_metrics or {}
            )
            self.stdout.write(f"model v{version.version}: {version.labels_used} labels, {summary}")
        if loop.selection_round_id:
            selection_round = loop.selection_round
            self.stdout.write(
                f"round {selection_round.number}: {selection_round.items.count()} items selected "
                f"by {selection_round.strategy} from a pool of {selection_round.pool_size}"
            )
        self.stdout.write(f"timings (s): {loop.timings}")
