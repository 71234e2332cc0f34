"""The live discussion page: transcript, composer with @mentions, streaming answers."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from cohorta import read_cache
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from cohorta.read_cache import cached_page
from focusgroups.access import get_focus_group_for_user, get_message_for_user
from focusgroups.autonomous import runs as autopilot
from focusgroups.discussion import services as engine
from focusgroups.guide.services import guide_sections
from focusgroups.quality import conformity
from focusgroups.report import live_themes
from focusgroups.responses import error_response, wants_json

# Messages a discussion page renders at first (the latest) and loads at a time when asked for earlier ones.
TRANSCRIPT_SHOWN = 100


@login_required
@cached_page
def discussion(request: HttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    participants = list(focus_group.participants.select_related("persona"))
    for participant in participants:
        participant.handle = engine.mention_handle(participant.persona, participants)
    # The transcript shows each message's own fields (speaker_name, persona_id): joining its persona would
    # load and decode a full profile per message for nothing. Only the latest turns are rendered: a long
    # session's whole transcript made the page slow to serve and to scroll; earlier ones load on demand.
    transcript = latest_messages(focus_group)
    run = focus_group.runs.select_related("next_speaker").first()
    context = {
        "focus_group": focus_group,
        "tab": "discussion",
        "run": autopilot.run_payload(run) if run is not None else None,
        "run_cost": get_app_settings().session_run_credit_cost,
        "has_guide": bool(guide_sections(focus_group)),
        "participants": participants,
        "transcript": transcript,
        "last_seq": transcript[-1].sequence if transcript else 0,
        "earlier": earlier_count(focus_group, transcript),
        "max_chars": engine.MAX_MESSAGE_CHARS,
        "live": live_themes.live_themes_panel(focus_group=focus_group),
        "conformity": conformity.conformity_get(focus_group),
        "conformity_price": conformity.conformity_price(len(participants)),
        "conformity_open": not focus_group.archived and not conformity.discussion_started(focus_group),
    }
    response = render(request, "focusgroups/discussion.html", context)
    # A failed turn's retry shows a countdown from now: the same page a minute later would be wrong.
    return read_cache.skip(response) if run is not None and run.failed_turns else response


@login_required
@require_POST
def post_message(request: HttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    try:
        message, answers = engine.message_post(focus_group=focus_group, text=request.POST.get("content", ""))
    except ApplicationError as exc:
        return error_response(request, focus_group, exc)
    if wants_json(request):
        return JsonResponse(
            {"message_id": message.pk, "sequence": message.sequence, "answer_ids": [str(a.pk) for a in answers]},
            status=202,
        )
    return redirect("focusgroups:detail", fg_id=focus_group.pk)


def latest_messages(focus_group, *, before: int | None = None) -> list:
    """The last TRANSCRIPT_SHOWN messages (before sequence ``before``), in order."""
    messages = focus_group.messages.all()
    if before is not None:
        messages = messages.filter(sequence__lt=before)
    return list(reversed(messages.order_by("-sequence")[:TRANSCRIPT_SHOWN]))


def earlier_count(focus_group, shown: list) -> int:
    """How many messages come before the first one shown."""
    if not shown:
        return 0
    return focus_group.messages.filter(sequence__lt=shown[0].sequence).count()


def _sequence_param(request: HttpRequest, name: str) -> int | None:
    try:
        return max(0, int(request.GET[name]))
    except (KeyError, ValueError):
        return None


@login_required
@require_GET
def transcript(request: HttpRequest, fg_id: int) -> HttpResponse:
    """Saved messages as HTML. ``?after=N``: those after N (the page's fallback when websockets are down).
    ``?before=N``: the TRANSCRIPT_SHOWN before N ("Show earlier messages"), or with ``&from=M`` all of
    M … N-1 (a link to an earlier message); ``X-Earlier`` says how many are still before them."""
    focus_group = get_focus_group_for_user(request.user, fg_id)
    before = _sequence_param(request, "before")
    if before is not None:
        start = _sequence_param(request, "from")
        if start is None:
            items = latest_messages(focus_group, before=before)
        else:
            items = list(focus_group.messages.filter(sequence__gte=start, sequence__lt=before).order_by("sequence"))
        response = render(request, "focusgroups/_messages.html", {"transcript": items, "focus_group": focus_group})
        response["X-First-Seq"] = str(items[0].sequence if items else before)
        response["X-Earlier"] = str(earlier_count(focus_group, items) if items else 0)
        return response
    after = _sequence_param(request, "after") or 0
    items = list(focus_group.messages.filter(sequence__gt=after).order_by("sequence"))
    response = render(request, "focusgroups/_messages.html", {"transcript": items, "focus_group": focus_group})
    response["X-Last-Seq"] = str(items[-1].sequence if items else after)
    response["X-Session-Status"] = focus_group.status
    return response


@login_required
@require_GET
def live_state(request: HttpRequest, fg_id: int) -> JsonResponse:
    """What the session page keeps up to date besides the transcript, for when its websocket is down (polled beside
    ``transcript``): the session's status, the autonomous run's panel and the emerging themes."""
    focus_group = get_focus_group_for_user(request.user, fg_id)
    run = focus_group.runs.select_related("next_speaker").first()
    return JsonResponse(
        {
            "status": focus_group.status,
            "run": autopilot.run_payload(run) if run is not None else None,
            "live_themes": live_themes.live_themes_latest(focus_group_id=focus_group.pk),
        }
    )


@login_required
@require_POST
def retry_answer(request: HttpRequest, fg_id: int, message_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    message = get_message_for_user(request.user, message_id, focus_group_id=focus_group.pk)
    try:
        answer = engine.answer_retry(focus_group=focus_group, message=message)
    except ApplicationError as exc:
        return error_response(request, focus_group, exc)
    if wants_json(request):
        return JsonResponse({"answer_id": str(answer.pk)}, status=202)
    return redirect("focusgroups:detail", fg_id=focus_group.pk)


@login_required
@require_POST
def set_status(request: HttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    try:
        engine.focus_group_set_status(focus_group=focus_group, status=request.POST.get("status", ""))
    except ApplicationError as exc:
        return error_response(request, focus_group, exc)
    return redirect("focusgroups:detail", fg_id=focus_group.pk)
