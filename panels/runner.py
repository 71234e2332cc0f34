"""Writing a panel's personas: one job for the panel, one short task per person, nobody waiting.

Built as survey runs are (surveys/runner.py): the panel's job (``panel_build``) hands out the first
members and returns, leaving the job running (``HANDED_OFF``). Each member task claims its member with a
conditional UPDATE, asks the model for what the sampled core does not fix (one mini-model call for a
light profile; a sketch and the personas' detailed profile for a full one), checks the core came through
untouched, and saves the persona, again conditionally: a persona that arrives after the panel was
cancelled is discarded. As it ends, the task moves the panel on: the next member (at most *panel
personas at once*, App settings, in flight), progress in one conditional UPDATE, and the last one
finishes the job. The reaper (``panel_watch``) fails a member whose worker stopped beating.

Credits: the panel reserved ``unit_cost`` per person (``panel:<id>:reserve``). A member that fails is
refunded at once (``…:refund:<member>``); whatever is neither delivered nor refunded when the panel ends
(cancelled, or its worker died) is refunded in one go (``…:refund:rest``). Both are idempotent.
"""

import logging
import random
from collections.abc import Callable
from functools import partial

from django.db import transaction
from django.utils import timezone

from billing.models import CreditTransaction
from billing.services import credits_refund, credits_refund_unused
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, QuotaExceeded
from cohorta.jobs.beat import SideBeat
from cohorta.jobs.fanout import Fanout, eta_text
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.registry import HANDED_OFF
from cohorta.jobs.services import job_finish, job_progress_report
from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import render_prompt
from llm.replay import llm_run, note
from panels.cores import core_mismatches, core_record, persona_fields
from panels.models import MemberState, Panel, PanelMember, ProfileDepth
from panels.population import Population
from panels.schemas import LIGHT_PROFILE_SCHEMA, SKETCH_SCHEMA
from personas.models import Persona, PersonaSource
from personas.schemas import DETAIL_PROFILE_SCHEMA, detail_to_fields, profile_repair
from personas.services import persona_create

logger = logging.getLogger(__name__)

# Sends one member to a worker (panels.tasks.dispatch_member); passed in, since the tasks module calls this one.
Dispatch = Callable[[int], None]
MEMBERS = Fanout(
    item_model=PanelMember,
    parent_model=Panel,
    parent_field="panel",
    parallelism=lambda: get_app_settings().panel_parallelism,
)
QUOTA_MESSAGE = "Not written: your monthly AI budget ran out. Your credits for this person were refunded."


# --- credits -----------------------------------------------------------------------------------------


def reserve_key(panel: Panel) -> str:
    return f"panel:{panel.pk}:reserve"


def _refund_member(panel: Panel, member: PanelMember) -> None:
    reserve = CreditTransaction.objects.filter(idempotency_key=reserve_key(panel)).first()
    if reserve is None or not panel.unit_cost:
        return
    credits_refund(
        spend=reserve,
        amount=panel.unit_cost,
        idempotency_key=f"panel:{panel.pk}:refund:{member.pk}",
        description=f"Refund: person {member.position + 1} of {panel.name} could not be written",
    )


def panel_settle(panel: Panel) -> int:
    """Close every member still open and refund what was reserved and neither delivered nor refunded.
    Idempotent; returns the credits refunded now."""
    MEMBERS.close_open(panel, "Not written: the panel stopped.")
    delivered = PanelMember.objects.filter(panel=panel, state=MemberState.DONE).count()
    return credits_refund_unused(
        spend_key=reserve_key(panel),
        kept=delivered * panel.unit_cost,
        idempotency_key=f"panel:{panel.pk}:refund:rest",
        description="Refund: panel personas not written",
    )


# --- one member --------------------------------------------------------------------------------------


def _fail(panel: Panel, member: PanelMember, reason: str, *, from_states=(MemberState.RUNNING,)) -> bool:
    return MEMBERS.fail(member.pk, reason, from_states=from_states, on_fail=partial(_refund_member, panel, member))


def _job_running(panel: Panel) -> bool:
    if panel.job_id is None:
        return False
    return Job.objects.filter(pk=panel.job_id, state=JobState.RUNNING, cancel_requested=False).exists()


def _member_beat(member_id: int, job_id) -> SideBeat:
    def beat() -> None:
        now = timezone.now()
        PanelMember.objects.filter(pk=member_id, state=MemberState.RUNNING).update(heartbeat_at=now)
        Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(heartbeat_at=now)

    return SideBeat(beat, name=f"panel-member-beat-{member_id}")


def member_write(*, member_id: int, dispatch: Dispatch) -> str:
    """Write one member's persona, then move the panel on. Safe to call twice: only one claim wins."""
    now = timezone.now()
    claimed = PanelMember.objects.filter(pk=member_id, state=MemberState.QUEUED).update(
        state=MemberState.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return "not-claimed"
    member = PanelMember.objects.select_related("panel", "panel__owner", "panel__folder").get(pk=member_id)
    panel = member.panel
    try:
        with _member_beat(member.pk, panel.job_id), llm_run(f"panel:{panel.pk}"):
            note(f"panel:{panel.pk}", "seeds", "sampling", panel.seed)
            return _write(panel, member)
    finally:
        panel_advance(panel, dispatch=dispatch)


def member_rng(panel: Panel, member: PanelMember) -> random.Random:
    return random.Random(f"{panel.seed}:{member.position}")


# Sampled dimensions the prompt gives through the persona's own fields: the age itself, not its band;
# where they live as one line.
_TOLD_AS_FIELDS = ("age", "region", "urban_rural")


def member_prompt_context(panel: Panel, member: PanelMember, population: Population, fields: dict) -> dict:
    """The fixed facts of one person, as the prompt lists them: their age, each sampled dimension, where
    they live."""
    facts = [{"label": "Age", "value": fields["age"]}] if fields.get("age") else []
    facts += [item for item in core_record(member.core, population) if item["key"] not in _TOLD_AS_FIELDS]
    if fields.get("location"):
        facts.append({"label": "Lives in", "value": fields["location"]})
    return {"description": panel.description, "population": population.name, "facts": facts}


def _profile(panel: Panel, member: PanelMember, population: Population, fields: dict) -> tuple[dict, bool]:
    """What the model writes for this person, the sampled fields laid over it: (profile, simulated)."""
    context = member_prompt_context(panel, member, population, fields)
    ask = partial(complete, user=panel.owner, job=panel.job_id)
    if panel.depth == ProfileDepth.LIGHT:
        light = ask(
            feature="persona_light",
            messages=[{"role": "user", "content": render_prompt("panels:persona_light", context)}],
            schema=LIGHT_PROFILE_SCHEMA,
            schema_name="persona_light",
        )
        return profile_repair({**detail_to_fields(light.data), **fields}), light.simulated
    sketch = ask(
        feature="persona_basic",
        messages=[{"role": "user", "content": render_prompt("panels:persona_sketch", context)}],
        schema=SKETCH_SCHEMA,
        schema_name="persona_sketch",
    )
    basic = {**sketch.data, **fields}
    detail = ask(
        feature="persona_detail",
        messages=[
            {
                "role": "user",
                "content": render_prompt(
                    "personas:persona_detail",
                    {
                        "description": panel.description or f"People sampled from {population.name}",
                        "basic": basic,
                        "references": [],
                    },
                ),
            }
        ],
        schema=DETAIL_PROFILE_SCHEMA,
        schema_name="persona_detail",
    )
    return profile_repair({**detail_to_fields(detail.data), **basic}), sketch.simulated or detail.simulated


def _unique_name(panel: Panel, name: str, rng: random.Random) -> str:
    """A name no other persona of the panel has (a thousand people drawn from one population share first
    and last names; a middle initial tells them apart). Called with the panel's row locked."""
    taken = set(Persona.objects.filter(panel_member__panel=panel).values_list("name", flat=True))
    return unique_name(name, taken, rng)


def unique_name(name: str, taken: set[str], rng: random.Random) -> str:
    """``name``, else it with a middle initial, else (a model that repeats one name twenty times) a number:
    always ends, whatever is taken."""
    if name not in taken:
        return name
    first, _, last = name.partition(" ")
    initials = list("ABCDEFGHJKLMNPRSTVW")
    rng.shuffle(initials)
    for initial in initials:
        candidate = f"{first} {initial}. {last}".strip()
        if candidate not in taken:
            return candidate
    number = 2
    while f"{name} ({number})" in taken:
        number += 1
    return f"{name} ({number})"


def _write(panel: Panel, member: PanelMember) -> str:
    if panel.stop_reason == "quota":
        _fail(panel, member, QUOTA_MESSAGE)
        return "failed"
    if not _job_running(panel):
        return "stopped"  # the panel's settlement closes and refunds it
    population = Population.from_json(panel.target)
    rng = member_rng(panel, member)
    fields = persona_fields(member.core, population, rng=rng)
    try:
        profile, simulated = _profile(panel, member, population, fields)
    except QuotaExceeded:
        Panel.objects.filter(pk=panel.pk).update(stop_reason="quota")
        _fail(panel, member, QUOTA_MESSAGE)
        return "failed"
    except (LLMError, ApplicationError) as exc:
        _fail(panel, member, f"{exc.message} Your credits for this person were refunded.")
        return "failed"
    except Exception:
        logger.exception("Panel member %s crashed", member.pk)
        _fail(panel, member, "An unexpected error stopped this person. Your credits for them were refunded.")
        return "failed"
    changed = core_mismatches(profile, fields)
    if changed:  # cannot happen while the schemas leave the core out; if it does, nothing false is saved
        logger.error("Panel member %s: the sampled %s changed on the way", member.pk, ", ".join(changed))
        _fail(panel, member, "Its sampled facts did not survive writing. Your credits for it were refunded.")
        return "failed"
    try:
        with transaction.atomic():
            Panel.objects.select_for_update().filter(pk=panel.pk).first()
            if not PanelMember.objects.filter(pk=member.pk, state=MemberState.RUNNING).exists():
                return "discarded"  # cancelled or abandoned meanwhile: already refunded, nothing saved
            profile["name"] = _unique_name(panel, profile.get("name") or "Unnamed", rng)
            persona = persona_create(
                owner=panel.owner,
                data=profile,
                source=PersonaSource.AI,
                folder=panel.folder,
                simulated=simulated,
                core=core_record(member.core, population),
                note=f"Sampled for the panel “{panel.name}”",
            )
            PanelMember.objects.filter(pk=member.pk).update(
                state=MemberState.DONE, persona=persona, finished_at=timezone.now(), error=""
            )
    except ApplicationError as exc:
        _fail(panel, member, f"{exc.message} Your credits for this person were refunded.")
        return "failed"
    return "done"


# --- the panel ---------------------------------------------------------------------------------------


def member_counts(panel: Panel) -> dict[str, int]:
    return MEMBERS.counts(panel)


def progress_message(counts: dict[str, int], elapsed: float | None = None) -> str:
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    message = f"{counts['done']:,} of {counts['total']:,} personas written"
    if counts["failed"]:
        message += f", {counts['failed']:,} failed"
    remaining = counts["total"] - finished
    if elapsed is not None and finished and remaining:
        message += f" · {eta_text(elapsed / finished * remaining)}"
    return message


def _fail_unwritten(panel: Panel) -> None:
    for member in PanelMember.objects.filter(panel=panel, state__in=(MemberState.PENDING, MemberState.QUEUED)):
        _fail(panel, member, QUOTA_MESSAGE, from_states=(MemberState.PENDING, MemberState.QUEUED))


def panel_advance(panel: Panel, *, dispatch: Dispatch) -> bool:
    """Move a panel on: hand out members while there is room, report progress, finish the job when nobody
    is left. Called by the panel's job to start, by each member's task as it ends and by the reaper.
    Returns whether the panel is still being written."""
    job = Job.objects.filter(pk=panel.job_id).first() if panel.job_id is not None else None
    if job is None or job.state != JobState.RUNNING:
        return False
    if Panel.objects.filter(pk=panel.pk, stop_reason="quota").exists():
        _fail_unwritten(panel)
    else:
        MEMBERS.hand_out(panel, dispatch)
    counts = member_counts(panel)
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    if counts["pending"] + counts["queued"] + counts["running"]:
        elapsed = (timezone.now() - job.started_at).total_seconds() if job.started_at else None
        job_progress_report(
            job_id=job.pk, done=finished, total=counts["total"], message=progress_message(counts, elapsed)
        )
        return True
    refunded = panel_settle(panel)
    if refunded:
        logger.warning("Panel %s: refunded %s credits left over at the end", panel.pk, refunded)
    job_finish(
        job=job,
        state=JobState.DONE,
        result={"panel_id": panel.pk, **{key: counts[key] for key in ("total", "done", "failed", "cancelled")}},
        progress_done=finished,
        progress_total=counts["total"],
        progress_message=progress_message(counts),
    )
    return False


def panel_execute(job, ctx, *, dispatch: Dispatch):
    """The panel's job: hand out the first members and return; their tasks carry the panel on."""
    panel = Panel.objects.get(pk=job.params["panel_id"])
    ctx.check_cancelled()
    panel_advance(panel, dispatch=dispatch)
    return HANDED_OFF


def panel_watch(panel: Panel, *, dispatch: Dispatch) -> bool:
    """The reaper's look at a panel gone quiet: a member whose worker stopped beating, or whose task the
    broker lost, is failed and refunded; then the panel is moved on (which finishes it when nobody is left)."""
    for member in MEMBERS.dead(panel):
        _fail(panel, member, "The worker writing this person stopped responding. Your credits for them were refunded.")
    for member in MEMBERS.lost(panel):
        _fail(
            panel,
            member,
            "Not written: its task was lost on the way to a worker. Your credits for it were refunded.",
            from_states=(MemberState.QUEUED,),
        )
    panel_advance(panel, dispatch=dispatch)
    return True
