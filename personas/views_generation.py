"""Pages for AI work on personas: generation briefs and their live progress,
AI modification, and image descriptions."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing.selectors import credits_balance
from billing.ux import error_html
from cohorta.accounts.http import AuthenticatedHttpRequest
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from cohorta.jobs.selectors import job_get_for_user
from personas import generation
from personas.access import get_brief_for_user, get_persona_for_user
from personas.forms_generation import BriefForm, ImageForm, ModifyForm
from personas.models import GenerationBrief, Persona


def _image_description(request: AuthenticatedHttpRequest) -> str:
    job = job_get_for_user(user=request.user, job_id=request.GET.get("from_job", ""))
    if job is None or job.kind != "image_description" or not job.result:
        return ""
    return job.result.get("description", "")


@login_required
def generate(request: AuthenticatedHttpRequest) -> HttpResponse:
    initial = {"count": request.GET.get("count", 8), "image_description": _image_description(request)}
    form = BriefForm(request.POST or None, request.FILES or None, owner=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            brief = generation.brief_start(
                owner=request.user,
                description=data["description"],
                count=data["count"],
                age_min=data["age_min"],
                age_max=data["age_max"],
                locations=data["locations"],
                gender_mix=data["gender_mix"],
                folder=data["folder"],
                files=data["files"],
                image_description=data["image_description"],
            )
        except ApplicationError as exc:
            form.add_error(None, error_html(exc))  # a 402 comes with its way out (Buy credits / ask an admin)
        else:
            return redirect("personas:brief", brief_id=brief.pk)
    unit = get_app_settings().persona_credit_cost
    context = {
        "form": form,
        "unit_cost": unit,
        "balance": credits_balance(user=request.user),
        "upload_limit_mb": generation.upload_limit_mb(),
        "image_description": form["image_description"].value() or initial["image_description"],
    }
    return render(request, "personas/generate.html", context, status=400 if form.errors else 200)


def _brief_context(brief: GenerationBrief) -> dict:
    personas = list(Persona.objects.filter(brief=brief).order_by("created_at", "id"))
    job = brief.job
    result = (job.result or {}) if job else {}
    return {
        "brief": brief,
        "job": job,
        "personas": personas,
        "failed": result.get("failed", []),
        "sources": list(brief.sources.all()),
        "simulated": any(p.simulated for p in personas),
    }


@login_required
def brief_detail(request: AuthenticatedHttpRequest, brief_id: int) -> HttpResponse:
    return render(request, "personas/brief.html", _brief_context(get_brief_for_user(request.user, brief_id)))


@login_required
def brief_personas(request: AuthenticatedHttpRequest, brief_id: int) -> HttpResponse:
    """The live part of the brief page, re-rendered as personas arrive."""
    return render(request, "personas/_brief_progress.html", _brief_context(get_brief_for_user(request.user, brief_id)))


@login_required
def describe_image(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ImageForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = generation.image_describe_start(owner=request.user, upload=form.cleaned_data["image"])
        except ApplicationError as exc:
            form.add_error("image", exc.message)
        else:
            return redirect(f"{reverse('personas:describe_image')}?job={job.pk}")
    job = job_get_for_user(user=request.user, job_id=request.GET.get("job", ""))
    if job is not None and job.kind != "image_description":
        job = None
    if request.htmx and job is not None:
        return render(request, "personas/_image_job.html", {"job": job})
    return render(
        request, "personas/describe_image.html", {"form": form, "job": job}, status=400 if form.errors else 200
    )


@login_required
@require_POST
def modify(request: AuthenticatedHttpRequest, persona_id: int) -> HttpResponse:
    persona = get_persona_for_user(request.user, persona_id)
    form = ModifyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say what to change, e.g. “make her more price-sensitive” (3–1,000 characters).")
        return redirect("personas:detail", persona_id=persona.pk)
    try:
        generation.persona_modify_start(persona=persona, instruction=form.cleaned_data["instruction"])
    except ApplicationError as exc:
        messages.error(request, error_html(exc))
    else:
        messages.info(request, f"Rewriting {persona.name}: the new version appears in the history when it is ready.")
    return redirect("personas:detail", persona_id=persona.pk)
