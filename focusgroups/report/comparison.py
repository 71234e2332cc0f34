"""Model comparison: re-run a session's guide with the same personas on another model
alias, then compare the two side by side (themes, cost, tokens, latency)."""

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, Sum

from cohorta.errors import ApplicationError
from focusgroups.autonomous.runs import run_start
from focusgroups.guide.services import guide_sections
from focusgroups.models import (
    Asset,
    ConformityCheck,
    DiscussionGuide,
    FocusGroup,
    FocusGroupStatus,
    Participant,
)
from focusgroups.report.analysis import analysis_get
from llm.methods import method_rows, rows_against, run_is_replay, run_methods
from llm.replay import focus_group_scope
from usage.models import UsageEvent
from usage.providers import provider_label


def comparison_start(*, focus_group: FocusGroup, alias: str) -> FocusGroup:
    """Copy the session (participants, guide, assets) onto ``alias`` and start autonomous mode there.
    The new run costs credits like any run."""
    if alias not in settings.LLM_MODELS:
        choices = ", ".join(sorted(settings.LLM_MODELS))
        raise ApplicationError(
            f"Unknown model alias “{alias}”. Choose one of: {choices}.",
            code="validation_error",
            extra={"fields": {"alias": ["Unknown alias."]}},
        )
    if focus_group.status != FocusGroupStatus.ENDED:
        raise ApplicationError("Compare a session once it has ended.", code="not_ended", status_code=409)
    if not guide_sections(focus_group):
        raise ApplicationError(
            "Only a session with a discussion guide can be re-run.", code="no_guide", status_code=409
        )
    with transaction.atomic():
        copy = session_copy(focus_group=focus_group, title=f"{focus_group.title} — on {alias}", alias=alias)
        run_start(focus_group=copy)
    return copy


def session_copy(*, focus_group: FocusGroup, title: str, alias: str) -> FocusGroup:
    """A new session with the same participants, guide and assets, shown beside the original on its
    comparison page. Inside the caller's transaction."""
    copy = FocusGroup.objects.create(
        owner=focus_group.owner,
        title=title,
        objective=focus_group.objective,
        concept=focus_group.concept,
        cost_cap_usd=focus_group.cost_cap_usd,
        compare_of=focus_group.compare_of or focus_group,
        model_alias=alias,
    )
    for participant in focus_group.participants.all():
        Participant.objects.create(focus_group=copy, persona_id=participant.persona_id, position=participant.position)
    DiscussionGuide.objects.create(focus_group=copy, data=focus_group.guide.data)
    measured = ConformityCheck.objects.filter(focus_group=focus_group).first()
    if measured is not None:  # the same private question before and after, so the runs compare
        ConformityCheck.objects.create(focus_group=copy, question=measured.question, options=measured.options)
    for asset in focus_group.assets.all():
        Asset.objects.create(
            focus_group=copy,
            kind=asset.kind,
            filename=asset.filename,
            content_type=asset.content_type,
            size=asset.size,
            text=asset.text,
            description=asset.description,
            warnings=asset.warnings,
        )
    return copy


def usage_for(focus_group: FocusGroup) -> dict:
    totals = UsageEvent.objects.filter(focus_group_id=focus_group.pk).aggregate(
        calls=Count("id"),
        cost=Sum("cost_usd"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        latency=Avg("latency_ms"),
        ttft=Avg("ttft_ms"),
    )
    # Aliases may run on different providers: each model is named with the provider it ran on.
    # order_by(): the model's default ordering would make every event's row distinct.
    ran = (
        UsageEvent.objects.filter(focus_group_id=focus_group.pk).order_by().values_list("model", "provider").distinct()
    )
    models = sorted({f"{model} on {provider_label(provider)}" for model, provider in ran})
    return {**totals, "models": models}


def comparison_columns(*, focus_group: FocusGroup) -> list[dict]:
    """The original session and every re-run of it, each with its usage and themes."""

    original = focus_group.compare_of or focus_group
    sessions = [original, *original.comparisons.order_by("created_at")]
    columns = []
    for session in sessions:
        analysis = analysis_get(focus_group=session)
        run = session.runs.first()
        columns.append(
            {
                "session": session,
                # A session without its own alias answers on the one the settings give persona answers.
                "alias": session.model_alias or settings.LLM_FEATURES["persona_response"],
                "run": run,
                "usage": usage_for(session),
                "messages": session.messages.filter(role="persona", status="complete").count(),
                "themes": (analysis or {}).get("themes", []),
                "replay": run_is_replay(focus_group_scope(session.pk)),
                "methods": method_rows(run_methods(focus_group_scope(session.pk))),
            }
        )
    # Each re-run's methods against the original's: what changed between the two runs.
    for column in columns[1:]:
        column["methods"] = rows_against(column["methods"], columns[0]["methods"])
    return columns
