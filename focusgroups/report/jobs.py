"""The analysis job: key themes, then the report, from one session's transcript.

Step 1/2 asks the model for themes with quotes by message number (``analysis.themes_schema``) and
checks every quote against the session (``analysis.themes_validate``). Step 2/2 writes the report
from the transcript and the checked themes (``analysis.report_schema``), then fixes its shape in
code (``analysis.report_finalise``: one finding per guide section, one stance row per participant keyed
by persona id, the synthetic-respondents limitation always last). The result of the job is the
analysis; a failure at either step leaves the previous analysis as it was.

Free (no credits), but every call is metered like any other (usage events, quota, session cap)."""

from django.db.models import Max
from django.utils import timezone

from cohorta.errors import ApplicationError
from cohorta.jobs.errors import JobFailure
from cohorta.jobs.registry import job_kind
from focusgroups.models import FocusGroup
from focusgroups.report import analysis
from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import fence, render_prompt


def _context(focus_group: FocusGroup, transcript: analysis.Transcript) -> dict:
    return {
        "title": focus_group.title,
        "objective": focus_group.objective,
        "concept": focus_group.concept.strip(),
        "speakers": [s.name for s in transcript.speakers],
        "truncated": transcript.truncated,
        "first_sequence": transcript.first_sequence,
        "omitted": transcript.omitted,
        # The rolling summary of older turns (shown only when the transcript had to be cut).
        "summary": focus_group.summary.strip(),
        "transcript": fence("transcript", transcript.text),
    }


def themes_prompt(focus_group: FocusGroup, transcript: analysis.Transcript) -> str:
    return render_prompt(
        "focusgroups:key_themes",
        {
            **_context(focus_group, transcript),
            "min_themes": analysis.MIN_THEMES,
            "max_themes": analysis.MAX_THEMES,
            "max_quotes": analysis.MAX_QUOTES,
        },
    )


def report_prompt(
    focus_group: FocusGroup,
    transcript: analysis.Transcript,
    *,
    themes: list[dict],
    sections: list[dict],
    by: str,
    stance_people: list[analysis.Speaker],
) -> str:
    return render_prompt(
        "focusgroups:report",
        {
            **_context(focus_group, transcript),
            "stance_people": stance_people,
            "themes": themes,
            "sections": sections,
            "findings_by": by,
            "max_key_points": analysis.MAX_KEY_POINTS,
        },
    )


def _ask(job, focus_group: FocusGroup, *, feature: str, prompt: str, schema: dict):
    try:
        return complete(
            feature=feature,
            messages=[{"role": "user", "content": prompt}],
            schema=schema,
            schema_name=feature,
            user=job.owner,
            job=job,
            focus_group_id=focus_group.pk,
            focus_group_cap_usd=focus_group.cost_cap_usd,
        )
    except (LLMError, ApplicationError) as exc:  # typed LLM errors, quota and session cap
        raise JobFailure(exc.message) from None


@job_kind(analysis.JOB_KIND, label="Session analysis")
def session_analysis(job, ctx):
    focus_group = FocusGroup.objects.filter(pk=job.params.get("focus_group_id"), owner=job.owner).first()
    if focus_group is None:
        raise JobFailure("The focus group was deleted before it could be analysed.")
    through = focus_group.messages.aggregate(last=Max("sequence"))["last"] or 0
    transcript = analysis.transcript_build(focus_group=focus_group)
    if len(transcript.persona_sequences) < analysis.MIN_PERSONA_MESSAGES:
        raise JobFailure("There is too little transcript to analyse: at least two answers from participants.")
    speakers = [s.name for s in transcript.speakers]
    participants = analysis.session_participants(focus_group=focus_group)
    spoke = {s.persona_id for s in transcript.speakers}
    # The report asks a stance, by persona id, of each participant who spoke in the transcript it reads.
    stance_people = [p for p in participants if p.persona_id in spoke]

    ctx.progress(0, 2, "Finding the key themes")
    found = _ask(
        job,
        focus_group,
        feature="key_themes",
        prompt=themes_prompt(focus_group, transcript),
        schema=analysis.themes_schema(sequences=transcript.persona_sequences, speakers=speakers),
    )
    themes, counts = analysis.themes_validate(found.data, focus_group=focus_group, lenient_text=found.simulated)
    ctx.progress(1, 2, f"{len(themes)} theme{'s' if len(themes) != 1 else ''} found; writing the report")

    sections = analysis.guide_sections(focus_group=focus_group)
    by = "section" if sections else "theme"
    if not sections:
        sections = [{"title": theme["title"], "goal": ""} for theme in themes] or [{"title": "Overall", "goal": ""}]
    titles = [s["title"] for s in sections]
    written = _ask(
        job,
        focus_group,
        feature="report",
        prompt=report_prompt(
            focus_group, transcript, themes=themes, sections=sections, by=by, stance_people=stance_people
        ),
        schema=analysis.report_schema(
            sections=titles, participant_ids=[p.persona_id for p in stance_people if p.persona_id is not None]
        ),
    )
    ctx.check_cancelled()  # cancelled while the model was writing: keep the analysis that is there
    report = analysis.report_finalise(
        written.data,
        sections=titles,
        participants=participants,
        spoke=spoke,
        extra_limitations=[analysis.truncation_limitation(transcript)],
        findings_by=by,
    )
    ctx.progress(2, 2, f"{len(themes)} theme{'s' if len(themes) != 1 else ''} and the report written")
    return {
        "version": analysis.RESULT_VERSION,
        "focus_group_id": focus_group.pk,
        "through_sequence": through,
        "transcript": transcript.as_dict(),
        "themes": themes,
        **counts,
        "report": report,
        "simulated": found.simulated or written.simulated,
        "model": written.model,
        "models": {"key_themes": found.model, "report": written.model},
        "generated_at": timezone.now().isoformat(),
    }
