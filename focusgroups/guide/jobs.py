"""The discussion-guide job: the model writes the guide from the session's objective, concept,
participants and assets, as structured output checked against ``GUIDE_SCHEMA``.

Free (no credits), but every call is metered like any other (usage events, quota, session cap)."""

from cohorta.errors import ApplicationError
from cohorta.jobs.errors import JobFailure
from cohorta.jobs.registry import job_kind
from focusgroups.guide import services as guides
from focusgroups.models import FocusGroup
from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import fence, render_prompt

# Reference material goes in as excerpts: enough to ground the questions, not a whole document.
ASSET_EXCERPT_CHARS = 2000
MAX_ASSETS = 8


def _participants(focus_group: FocusGroup) -> list[dict]:
    return [
        {"name": p.persona.name, "age": p.persona.age, "occupation": p.persona.occupation}
        for p in focus_group.participants.select_related("persona")
    ]


def _references(focus_group: FocusGroup) -> list[str]:
    references = []
    for asset in focus_group.assets.all():
        text = (asset.reference_text or "").strip()
        if not text:
            continue
        if len(text) > ASSET_EXCERPT_CHARS:
            text = text[:ASSET_EXCERPT_CHARS].rsplit(" ", 1)[0] + " […]"
        references.append(fence(f"{asset.get_kind_display().lower()} {asset.filename}", text))
        if len(references) >= MAX_ASSETS:
            break
    return references


def guide_prompt(focus_group: FocusGroup) -> str:
    return render_prompt(
        "focusgroups:discussion_guide",
        {
            "title": focus_group.title,
            "objective": focus_group.objective,
            "concept": focus_group.concept.strip(),
            "participants": _participants(focus_group),
            "references": _references(focus_group),
            "min_sections": guides.MIN_SECTIONS,
            "max_sections": guides.MAX_SECTIONS,
            "max_questions": guides.MAX_QUESTIONS,
            "min_turns": guides.MIN_TURNS,
            "max_turns": guides.MAX_TURNS,
        },
    )


@job_kind(guides.JOB_KIND, label="Discussion guide")
def discussion_guide(job, ctx):
    focus_group = FocusGroup.objects.filter(pk=job.params.get("focus_group_id"), owner=job.owner).first()
    if focus_group is None:
        raise JobFailure("The focus group was deleted before its guide could be written.")
    ctx.progress(0, 1, "Writing the discussion guide")
    try:
        result = complete(
            feature="discussion_guide",
            messages=[{"role": "user", "content": guide_prompt(focus_group)}],
            schema=guides.GUIDE_SCHEMA,
            schema_name="discussion_guide",
            user=job.owner,
            job=job,
            focus_group_id=focus_group.pk,
            focus_group_cap_usd=focus_group.cost_cap_usd,
        )
    except (LLMError, ApplicationError) as exc:  # typed LLM errors, quota and session cap
        raise JobFailure(exc.message) from None
    ctx.check_cancelled()  # cancelled while the model was writing: keep the guide that is there
    try:
        # Validated before it replaces anything: a failure leaves the previous guide as it was.
        data = guides.guide_repair(result.data, title=focus_group.title)
        guide = guides.guide_save(focus_group=focus_group, data=data, simulated=result.simulated, job=job)
    except ApplicationError as exc:
        raise JobFailure(f"The AI's guide could not be used: {exc.message} Please try again.") from None
    counts = guides.guide_counts(guide.data)
    ctx.progress(1, 1, f"{counts['sections']} sections, {counts['questions']} questions")
    return {"sections": counts["sections"], "questions": counts["questions"], "simulated": result.simulated}
