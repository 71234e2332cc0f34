"""Put background work back on its feet after workers died: the reapers' work, on demand, with a plan.

Beat runs the reapers every 30 s; this command is for the moments beat is not enough: after an
outage or a deploy that killed every worker, when a broker lost its messages, or to see what is
stuck before touching anything (``--dry-run``). Each step is a conditional UPDATE, so running the
command twice, or next to the reapers, never does anything twice.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.timesince import timesince

from cohorta.errors import ApplicationError
from cohorta.jobs import tasks
from cohorta.jobs.errors import IllegalJobTransition
from cohorta.jobs.models import SLOT_STATES, Job, JobState
from cohorta.jobs.registry import get_kind, kind_label
from cohorta.jobs.services import job_transition, job_watch, jobs_dispatch
from focusgroups.autonomous.runs import STALE_SECONDS, run_resume, runs_reap
from focusgroups.models import AutonomousRun, FocusGroupStatus, RunStatus

logger = logging.getLogger(__name__)

DEFAULT_REQUEUE_AFTER = 10 * 60


@dataclass
class Plan:
    stale_jobs: list[Job]
    lost_jobs: list[Job]
    pending_owners: list[int]
    stale_runs: list
    resumable_runs: list

    @property
    def empty(self) -> bool:
        return not (self.stale_jobs or self.lost_jobs or self.pending_owners or self.stale_runs or self.resumable_runs)


class Command(BaseCommand):
    help = (
        "Recover background work after workers died. Marks running jobs whose heartbeat is stale as "
        "interrupted (and gives back what they reserved, e.g. credits), sends queued jobs the broker seems "
        "to have lost to the workers again, starts waiting jobs that have a free slot, and marks autonomous "
        "sessions whose turn stopped as interrupted. With --resume-runs it also resumes interrupted sessions "
        "from their last saved turn. Safe to run at any time and as often as you like; --dry-run only lists "
        "what it would do."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List what would be done; change nothing.")
        parser.add_argument(
            "--stale-after",
            type=int,
            default=None,
            metavar="SECONDS",
            help=f"A running job silent for this long is dead (default {settings.JOBS_STALE_AFTER_SECONDS}).",
        )
        parser.add_argument(
            "--all-running",
            action="store_true",
            help=(
                "Treat every running job and session as orphaned, whatever its heartbeat. Only when you know "
                "that no worker is running (e.g. all were stopped for a deploy)."
            ),
        )
        parser.add_argument(
            "--requeue-after",
            type=int,
            default=DEFAULT_REQUEUE_AFTER,
            metavar="SECONDS",
            help=f"Send a queued job again when it has waited this long (default {DEFAULT_REQUEUE_AFTER}).",
        )
        parser.add_argument(
            "--resume-runs",
            action="store_true",
            help="Also resume interrupted autonomous sessions (their next turns cost LLM calls, no new credits).",
        )

    def handle(self, *args, **options):
        now = timezone.now()
        stale_after = options["stale_after"] or settings.JOBS_STALE_AFTER_SECONDS
        plan = self.make_plan(
            now=now,
            stale_after=stale_after,
            all_running=options["all_running"],
            requeue_after=options["requeue_after"],
            resume_runs=options["resume_runs"],
        )
        self.describe(plan, now=now)
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing was changed.")
            return
        if plan.empty:
            return
        done = self.apply(plan, now=now, all_running=options["all_running"])
        self.stdout.write(
            "Done: {interrupted} job(s) interrupted, {requeued} re-sent, {dispatched} started, "
            "{runs_interrupted} session run(s) interrupted, {runs_resumed} resumed.".format(**done)
        )

    # --- what is stuck --------------------------------------------------------------------------

    def make_plan(self, *, now, stale_after: int, all_running: bool, requeue_after: int, resume_runs: bool) -> Plan:

        running = Job.objects.filter(state=JobState.RUNNING).select_related("owner").order_by("started_at")
        if not all_running:
            cutoff = now - timedelta(seconds=stale_after)
            running = running.filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))
        lost = (
            Job.objects.filter(state=JobState.QUEUED, queued_at__lt=now - timedelta(seconds=requeue_after))
            .select_related("owner")
            .order_by("queued_at")
        )
        busy = dict(
            Job.objects.filter(state__in=SLOT_STATES)
            .values("owner_id")
            .annotate(n=Count("pk"))
            .values_list("owner_id", "n")
        )
        waiting = Job.objects.filter(state=JobState.PENDING).values_list("owner_id", flat=True).distinct()
        pending_owners = sorted(o for o in waiting if busy.get(o, 0) < settings.JOBS_MAX_RUNNING_PER_USER)

        active_runs = AutonomousRun.objects.filter(status__in=[RunStatus.RUNNING, RunStatus.STOPPING])
        if not all_running:
            # The same rule as focusgroups.autonomous.runs.runs_reap, which does the work.
            active_runs = active_runs.filter(
                Q(claimed_turn__isnull=False, heartbeat_at__lt=now - timedelta(seconds=STALE_SECONDS))
                | Q(claimed_turn__isnull=True, heartbeat_at__lt=now - timedelta(seconds=STALE_SECONDS * 8))
            )
        resumable = []
        if resume_runs:
            resumable = list(
                AutonomousRun.objects.filter(
                    status=RunStatus.INTERRUPTED,
                    focus_group__owner__is_active=True,
                    focus_group__archived=False,
                )
                .exclude(focus_group__status=FocusGroupStatus.ENDED)
                .select_related("focus_group")
            )
        return Plan(
            stale_jobs=list(running),
            lost_jobs=list(lost),
            pending_owners=pending_owners,
            stale_runs=list(active_runs.select_related("focus_group")),
            resumable_runs=resumable,
        )

    def describe(self, plan: Plan, *, now) -> None:
        if plan.empty:
            self.stdout.write("Nothing to recover: no stale, lost or waiting work.")
            return
        for job in plan.stale_jobs:
            beat = job.heartbeat_at or job.started_at
            since = f"no heartbeat for {timesince(beat, now)}" if beat else "never beat"
            self.stdout.write(f"interrupt  job {job.pk} {kind_label(job.kind)} of {job.owner.email}: {since}")
        for job in plan.lost_jobs:
            assert job.queued_at is not None  # lost jobs are found by their queued_at
            self.stdout.write(
                f"re-send    job {job.pk} {kind_label(job.kind)} of {job.owner.email}: "
                f"queued {timesince(job.queued_at, now)} ago"
            )
        for owner_id in plan.pending_owners:
            self.stdout.write(f"start      waiting jobs of user #{owner_id} (free slots)")
        for run in plan.stale_runs:
            self.stdout.write(f"interrupt  session run {run.pk} of “{run.focus_group.title}” (turn {run.turns_done})")
        for run in plan.resumable_runs:
            self.stdout.write(
                f"resume     session run {run.pk} of “{run.focus_group.title}” from turn {run.turns_done}"
            )

    # --- doing it -------------------------------------------------------------------------------

    def apply(self, plan: Plan, *, now, all_running: bool) -> dict[str, int]:
        done = {"interrupted": 0, "requeued": 0, "dispatched": 0, "runs_interrupted": 0, "runs_resumed": 0}
        owners: set[int] = set()
        for job in plan.stale_jobs:
            if self.interrupt_job(job, all_running=all_running):
                done["interrupted"] += 1
                owners.add(job.owner_id)
        for job in plan.lost_jobs:
            done["requeued"] += self.requeue_job(job, now=now)
        for owner_id in sorted(owners | set(plan.pending_owners)):
            done["dispatched"] += len(jobs_dispatch(owner_id=owner_id))
        if plan.stale_runs:
            done["runs_interrupted"] = self.interrupt_runs(now=now, all_running=all_running)
        for run in plan.resumable_runs:
            done["runs_resumed"] += self.resume_run(run)
        return done

    def interrupt_job(self, job: Job, *, all_running: bool) -> bool:
        error = (
            "Cohorta's workers were stopped while this job was running. You can retry it."
            if all_running
            else "The worker running this job stopped responding. You can retry it."
        )
        if not all_running and job_watch(job=job):
            return False  # handed-off work still going (its tasks wait in the broker), as the reaper judges
        try:
            job_transition(job=job, to=JobState.INTERRUPTED, error=error, progress_message="Interrupted")
        except IllegalJobTransition:
            return False  # it finished, or a reaper got there first
        on_abandon = get_kind(job.kind).on_abandon if job.kind else None
        if on_abandon is not None:
            try:
                on_abandon(job)  # idempotent by contract: refunds are keyed
            except Exception:
                logger.exception("Could not settle interrupted job %s", job.pk)
        return True

    def requeue_job(self, job: Job, *, now) -> int:
        """Send a queued job to the workers again. Claiming it stays a conditional UPDATE, so if the
        first message was not lost after all, one of the two deliveries simply finds nothing to do."""

        with transaction.atomic():
            # Restamping queued_at is the claim: a second run of this command leaves it alone.
            claimed = Job.objects.filter(pk=job.pk, state=JobState.QUEUED, queued_at=job.queued_at).update(
                queued_at=now, progress_message="Queued again"
            )
            if claimed:
                queue = get_kind(job.kind).queue
                job_id = str(job.pk)
                transaction.on_commit(lambda: tasks.run_job.apply_async((job_id,), queue=queue))
        return claimed

    def interrupt_runs(self, *, now, all_running: bool) -> int:

        # runs_reap judges heartbeats against ``now``; a clock far ahead makes every active run stale,
        # which is what --all-running means.
        return runs_reap(now=now + timedelta(days=3650) if all_running else now)

    def resume_run(self, run) -> int:

        try:
            run_resume(run=run)
        except ApplicationError as exc:
            self.stdout.write(f"  run {run.pk} not resumed: {exc.message}")
            return 0
        return 1
