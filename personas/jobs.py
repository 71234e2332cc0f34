"""Job kinds for personas: two-stage generation, AI modification, image description."""

import json
import logging
import random
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import connection

from billing.models import CreditTransaction
from billing.services import credits_refund, credits_refund_unused
from cohorta.errors import ApplicationError
from cohorta.jobs.errors import JobCancelled, JobFailure
from cohorta.jobs.registry import job_kind
from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import fence, render_prompt
from personas.brief_limits import BriefLimits, mismatch_text
from personas.models import SAMPLED_FIELDS, GenerationBrief, Persona, PersonaSource
from personas.schemas import (
    DETAIL_PROFILE_SCHEMA,
    MODIFIED_PROFILE_SCHEMA,
    basic_profiles_schema,
    detail_to_fields,
    profile_repair,
)
from personas.selectors import existing_names
from personas.services import persona_create, persona_update

logger = logging.getLogger(__name__)

# Long documents are summarised before they go into prompts.
SUMMARY_THRESHOLD_CHARS = 6000
REFERENCE_MAX_CHARS = 8000


# --- credits -------------------------------------------------------------------------------


def _reserve(brief: GenerationBrief) -> CreditTransaction | None:
    return CreditTransaction.objects.filter(idempotency_key=f"brief:{brief.pk}:reserve").first()


def _refund(reserve: CreditTransaction | None, amount: int, key: str, description: str) -> int:
    if reserve is None or amount <= 0:
        return 0
    credits_refund(spend=reserve, amount=amount, idempotency_key=key, description=description)
    return amount


def _settle_rest(brief: GenerationBrief, unit_cost: int) -> int:
    """Refund whatever was reserved and neither delivered nor refunded yet. Idempotent."""
    return credits_refund_unused(
        spend_key=f"brief:{brief.pk}:reserve",
        kept=Persona.objects.filter(brief=brief).count() * unit_cost,
        idempotency_key=f"brief:{brief.pk}:refund:rest",
        description="Refund: personas not generated",
    )


def persona_generation_abandoned(job) -> None:
    """Called when a generation job is interrupted (dead worker): give back unspent credits."""
    brief = GenerationBrief.objects.filter(pk=job.params.get("brief_id")).first()
    if brief is not None:
        _settle_rest(brief, int(job.params.get("unit_cost", 0)))


# --- grounding -----------------------------------------------------------------------------


def _references(brief: GenerationBrief, job) -> list[str]:
    references = []
    for source in brief.sources.all():
        text = source.summary or source.text
        if len(text) > SUMMARY_THRESHOLD_CHARS and not source.summary:
            result = complete(
                feature="grounding_summary",
                messages=[
                    {
                        "role": "user",
                        "content": render_prompt(
                            "personas:grounding_summary",
                            {"fenced": fence(source.filename, text[:60000]), "max_words": 400},
                        ),
                    }
                ],
                user=brief.owner,
                job=job,
            )
            source.summary = result.text
            source.save(update_fields=["summary"])
            text = result.text
        if source.segments:
            labels = ", ".join(str(segment.get("label", "")) for segment in source.segments[:50])
            text = f"Segment labels: {labels}\n{text}"
        references.append(fence(source.filename, text[:REFERENCE_MAX_CHARS]))
    return references


def _citation(brief: GenerationBrief, grounded_in: str | None) -> list[dict]:
    """Map the model's "grounded_in" to a real source or segment; never cite something that is not there."""
    sources = list(brief.sources.all())
    if not sources:
        return []
    wanted = (grounded_in or "").strip().lower()
    if wanted:
        for source in sources:
            for segment in source.segments or []:
                label = str(segment.get("label", "")).lower()
                if label and (label == wanted or label in wanted or wanted in label):
                    return [{"source": source.filename, "segment": segment["label"]}]
        for source in sources:
            name = source.filename.lower()
            stem = name.rsplit(".", 1)[0]
            if name in wanted or stem in wanted or wanted in name:
                return [{"source": source.filename}]
    if len(sources) == 1:
        return [{"source": sources[0].filename}]  # the only reference material the panel was given
    return []


def _unique_names(profiles: list[dict], taken: set[str], rng: random.Random) -> list[dict]:
    seen = set(taken)
    for profile in profiles:
        name = (profile.get("name") or "Unnamed").strip()
        while name in seen:
            first, _, last = name.partition(" ")
            name = f"{first} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {last}".strip()
        profile["name"] = name
        seen.add(name)
    return profiles


# --- generation ----------------------------------------------------------------------------


@job_kind("persona_generation", label="Persona generation", on_abandon=persona_generation_abandoned)
def persona_generation(job, ctx):
    brief = GenerationBrief.objects.select_related("owner", "folder").get(pk=job.params["brief_id"])
    return brief_generate(brief, job, ctx, unit_cost=int(job.params.get("unit_cost", 0)))


def brief_generate(brief: GenerationBrief, job, ctx, *, unit_cost: int) -> dict:
    """Generate a brief's personas inside ``job`` (its own, or a job of another kind that generates briefs,
    such as a survey's generated panel), reporting progress through ``ctx``. Raises JobFailure or
    JobCancelled as the job should end; whatever happens, what was not delivered is refunded."""
    try:
        return _generate(brief, job, ctx, unit_cost)
    finally:
        refunded = _settle_rest(brief, unit_cost)
        if refunded:
            logger.info("Brief %s: refunded %s credits for personas not delivered", brief.pk, refunded)


def brief_settle(brief: GenerationBrief, *, unit_cost: int) -> int:
    """Refund what a brief reserved and neither delivered nor refunded yet (a brief never generated gets it
    all back). Idempotent; returns the credits refunded now."""
    return _settle_rest(brief, unit_cost)


def _sketch(
    brief: GenerationBrief,
    job,
    *,
    count: int,
    limits: BriefLimits,
    references: list[str],
    avoid: set[str],
    genders: dict[str, int] | None = None,
    replacing: Sequence[str] = (),
) -> list[dict]:
    """Stage 1: ``count`` basic profiles, asked for within the brief's limits."""
    result = complete(
        feature="persona_basic",
        messages=[
            {
                "role": "user",
                "content": render_prompt(
                    "personas:persona_basic",
                    {
                        "description": brief.description,
                        "count": count,
                        "limits": limits.prompt_lines(count, genders),
                        "replacing": list(replacing),
                        "image_description": brief.image_description,
                        "references": references,
                        "avoid_names": sorted(avoid)[:50],
                    },
                ),
            }
        ],
        schema=basic_profiles_schema(count),
        schema_name="personas",
        user=brief.owner,
        job=job,
    )
    return result.data["personas"][:count]


def _within_limits(
    brief: GenerationBrief, job, ctx, profiles: list[dict], *, limits: BriefLimits, references: list[str]
) -> tuple[list[dict], list[list[str]]]:
    """The sketches, those outside the brief's limits sketched again once; and what is still off with each.

    Only the sketch is redone (the limits are all stage-1 fields), before any profile is written: credits
    are per persona delivered, so a redo costs the researcher nothing more."""
    issues = limits.panel_issues(profiles)
    redo = [index for index, found in enumerate(issues) if found]
    if not redo:
        return profiles, issues
    count = len(profiles)
    ctx.progress(0, count, f"Sketching {len(redo)} again to fit the brief…")
    kept = {profile.get("name", "") for index, profile in enumerate(profiles) if index not in redo}
    try:
        again = _sketch(
            brief,
            job,
            count=len(redo),
            limits=limits,
            references=references,
            avoid=existing_names(user=brief.owner) | kept,
            genders=limits.genders_needed(profiles, redo),
            replacing=[" ".join(issues[index]) for index in redo],
        )
    except (LLMError, ApplicationError) as exc:
        logger.warning("Brief %s: sketching %s again failed (%s); kept with a flag", brief.pk, len(redo), exc.message)
        return profiles, issues
    for index, new in zip(redo, again, strict=False):
        # The new sketch, unless it is further off than the first (a panel-level gender note aside).
        if len(limits.person_issues(new)) <= len(limits.person_issues(profiles[index])):
            profiles[index] = new
    return profiles, limits.panel_issues(profiles)


def _generate(brief: GenerationBrief, job, ctx, unit_cost: int) -> dict:
    owner, count = brief.owner, brief.count
    limits = BriefLimits.of(brief)
    ctx.progress(0, count, "Reading the brief…")
    try:
        references = _references(brief, job)
        ctx.progress(0, count, f"Sketching {count} {'person' if count == 1 else 'people'}…")
        sketches = _sketch(
            brief, job, count=count, limits=limits, references=references, avoid=existing_names(user=owner)
        )
    except (LLMError, ApplicationError) as exc:
        raise JobFailure(f"Could not sketch the panel: {exc.message} Your credits were refunded.") from None
    sketches, issues = _within_limits(brief, job, ctx, sketches, limits=limits, references=references)
    profiles = _unique_names(sketches, existing_names(user=owner), random.Random(brief.pk))
    ctx.progress(0, count, f"Writing {count} detailed profile{'' if count == 1 else 's'}…")

    reserve = _reserve(brief)
    stop = threading.Event()
    created: list[int] = []
    failed: list[dict] = []

    def complete_one(index: int, basic: dict):
        try:
            if stop.is_set():
                return "skipped", None
            result = complete(
                feature="persona_detail",
                messages=[
                    {
                        "role": "user",
                        "content": render_prompt(
                            "personas:persona_detail",
                            {
                                "description": brief.description,
                                "basic": basic,
                                "references": references,
                            },
                        ),
                    }
                ],
                schema=DETAIL_PROFILE_SCHEMA,
                schema_name="persona_detail",
                user=owner,
                job=job,
            )
            if stop.is_set():
                return "skipped", None  # cancelled while it was being written: not delivered, refunded
            persona = persona_create(
                owner=owner,
                data=profile_repair({**basic, **detail_to_fields(result.data)}),
                source=PersonaSource.AI,
                folder=brief.folder,
                brief=brief,
                grounding=_citation(brief, basic.get("grounded_in")),
                simulated=result.simulated,
                brief_mismatch=mismatch_text(issues[index]),
                note="Generated by AI",
            )
            return "ok", persona.pk
        except (LLMError, ApplicationError) as exc:
            return "failed", exc.message
        except Exception:
            logger.exception("Profile %s of brief %s crashed", index, brief.pk)
            return "failed", "An unexpected error stopped this profile."
        finally:
            connection.close()  # each worker thread has its own connection

    cancelled = False
    parallel = max(1, min(count, settings.PERSONA_GENERATION_PARALLELISM))
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix=f"brief-{brief.pk}") as pool:
        pending = {pool.submit(complete_one, index, basic): (index, basic) for index, basic in enumerate(profiles)}
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                index, basic = pending.pop(future)
                status, value = future.result()
                if status == "ok":
                    created.append(value)
                elif status == "failed":
                    failed.append({"name": basic.get("name", f"Profile {index + 1}"), "reason": value})
                    _refund(
                        reserve,
                        unit_cost,
                        f"brief:{brief.pk}:refund:{index}",
                        f"Refund: {basic.get('name', 'a persona')} could not be generated",
                    )
            try:
                message = f"{len(created)} of {count} ready" + (f", {len(failed)} failed" if failed else "")
                ctx.progress(len(created) + len(failed), count, message)
            except JobCancelled:
                cancelled = True
                stop.set()
                for future in pending:
                    future.cancel()
                pending = {f: meta for f, meta in pending.items() if not f.cancelled()}
                # Calls already in flight finish and are discarded; nothing new starts.
    result = {"created": created, "failed": failed, "count": count}
    if cancelled:
        raise JobCancelled("Cancelled", result=result)
    return result


# --- modification --------------------------------------------------------------------------


def _modify_refund(job) -> None:
    spend = CreditTransaction.objects.filter(idempotency_key=f"job:{job.pk}:spend").first()
    if spend is not None:
        credits_refund(spend=spend, idempotency_key=f"job:{job.pk}:refund", description="Refund: AI change failed")


@job_kind("persona_modify", label="AI persona change", on_abandon=_modify_refund)
def persona_modify(job, ctx):
    persona = Persona.objects.filter(pk=job.params["persona_id"], owner=job.owner).first()
    if persona is None:
        _modify_refund(job)
        raise JobFailure("The persona was deleted before the change could be made. Your credits were refunded.")
    instruction = job.params["instruction"]
    ctx.progress(0, 1, f"Rewriting {persona.name}")
    current = {key: value for key, value in persona.profile_data().items()}
    try:
        result = complete(
            feature="persona_modify",
            messages=[
                {
                    "role": "user",
                    "content": render_prompt(
                        "personas:persona_modify",
                        {
                            "instruction": fence("change request", instruction),
                            "profile_json": json.dumps(current, ensure_ascii=False, indent=1),
                        },
                    ),
                }
            ],
            schema=MODIFIED_PROFILE_SCHEMA,
            schema_name="persona",
            user=job.owner,
            job=job,
            persona_id=persona.pk,
        )
        before = persona.profile_data()
        fields = profile_repair(detail_to_fields(result.data), current=before)
        if persona.core:  # sampled from a population: the AI may rewrite the person, not the sample
            fields.update({field: before[field] for field in SAMPLED_FIELDS})
        persona = persona_update(
            persona=persona, data=fields, source=PersonaSource.AI_MODIFIED, note=f"AI: {instruction}"
        )
    except (LLMError, ApplicationError) as exc:
        _modify_refund(job)
        raise JobFailure(f"{exc.message} Your credits were refunded.") from None
    changed = [field for field, value in persona.profile_data().items() if before.get(field) != value]
    ctx.progress(1, 1, "Done")
    return {"persona_id": persona.pk, "version": persona.version, "changed": changed, "simulated": result.simulated}


# --- vision --------------------------------------------------------------------------------


@job_kind("image_description", label="Image description")
def image_description(job, ctx):
    ctx.progress(0, 1, "Looking at the image")
    try:
        result = complete(
            feature="image_description",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": render_prompt("personas:image_description")},
                        {"type": "image_url", "image_url": {"url": job.params["_image"]}},
                    ],
                }
            ],
            user=job.owner,
            job=job,
        )
    except (LLMError, ApplicationError) as exc:
        raise JobFailure(exc.message) from None
    ctx.progress(1, 1, "Described")
    return {"description": result.text, "filename": job.params.get("filename", ""), "simulated": result.simulated}
