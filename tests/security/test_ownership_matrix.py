"""Nobody sees what is not theirs: every URL pattern of the product, enumerated.

Each route must appear in exactly one table below. A route that names an object
(``<int:fg_id>``, ``<str:job_id>``…) is requested by another user with every
method, and must answer 404 (or 405 for a method it does not take) and never
show the owner's data; the owner gets something else than 404 from it, which
proves the case points at a real object. A route without an object must not
show the owner's data to the other user. A route added without a case here
fails ``test_every_route_has_a_case``.

Websockets have their own cases (``tests/focusgroups/test_discussion.py`` and
``tests/jobs/test_consumer.py``: another user's session socket closes 4404); the
admin and the staff API are checked in ``tests/backoffice/test_access.py``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from billing.models import CheckoutSession, CreditPack
from cohorta.accounts.services import api_token_create
from focusgroups.models import Asset, AssetKind, AutonomousRun, DiscussionGuide, RunEndReason, RunStatus
from panels.microdata import parse_microdata_csv
from panels.models import MicrodataFile, Panel, PanelMember, PopulationFile
from panels.population import bundled_population
from personas.models import GenerationBrief
from privacy.models import DataExport
from surveys.models import Answer, Respondent, RespondentState, Run, Survey
from tests.factories import JobFactory, UserFactory
from tests.focusgroups.factories import FocusGroupFactory, add_message, add_participants
from tests.personas.factories import FolderFactory, PersonaFactory
from validation.models import Reference, Validation, ValidationState

pytestmark = pytest.mark.django_db

CANARY = "CANARY-7f3a"

# Mounted apps whose routes are not the product's own pages: the admin (staff-only,
# tested elsewhere), allauth's sign-in flows (no objects), the API schema and docs.
EXCLUDED_PREFIXES = ("admin/", "accounts/", "api/schema/", "api/docs/", "static/", "media/")


@dataclass
class World:
    owner: object
    other: object
    folder: object
    persona: object
    brief: object
    focus_group: object
    asset: object
    message: object
    job: object
    token: object
    export_job: object
    checkout: object
    survey: object = None
    run: object = None
    respondent: object = None
    panel: object = None
    population_file: object = None
    microdata_file: object = None
    reference: object = None
    validation: object = None


@pytest.fixture
def world(db) -> World:
    owner = UserFactory(email="owner-matrix@example.com")
    other = UserFactory(email="other-matrix@example.com")
    folder = FolderFactory(owner=owner, name=f"{CANARY} folder")
    persona = PersonaFactory(owner=owner, name=f"{CANARY} Persona", folder=folder)
    brief = GenerationBrief.objects.create(owner=owner, description=f"{CANARY} brief", count=1)
    focus_group = FocusGroupFactory(owner=owner, title=f"{CANARY} session")
    add_participants(focus_group, [persona, PersonaFactory(owner=owner)])
    DiscussionGuide.objects.create(
        focus_group=focus_group,
        data={
            "title": f"{CANARY} guide",
            "sections": [
                {"title": "Intro", "goal": "", "turn_budget": 4, "questions": [{"text": "Hi?", "probes": []}]}
            ],
        },
    )
    asset = Asset(focus_group=focus_group, kind=AssetKind.IMAGE, filename="shelf.png", description=f"{CANARY} image")
    asset.image.save("shelf.png", ContentFile(_png()), save=False)
    asset.save()
    message = add_message(focus_group, persona=persona, content=f"{CANARY} answer")
    AutonomousRun.objects.create(focus_group=focus_group, status=RunStatus.ENDED, end_reason=RunEndReason.STOPPED)
    job = JobFactory(owner=owner)
    token, _ = api_token_create(user=owner, name=f"{CANARY} token")
    export_job = JobFactory(owner=owner, kind="account_export", state="done", params={})
    export_name = default_storage.save(f"private/exports/{owner.pk}/matrix.zip", ContentFile(CANARY.encode()))
    DataExport.objects.create(
        owner=owner,
        job=export_job,
        file=export_name,
        size=len(CANARY),
        ready_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=7),
    )
    pack = CreditPack.objects.order_by("pk").first()
    checkout = CheckoutSession.objects.create(
        stripe_id="cs_test_matrix_owner",
        user=owner,
        user_email=owner.email,
        pack=pack,
        pack_name=f"{CANARY} pack",
        credits=50,
        amount=4900,
    )
    survey = Survey.objects.create(owner=owner, title=f"{CANARY} survey")
    question = survey.questions.create(kind="open", text=f"{CANARY} question?")
    questions = [{"id": question.pk, "number": 1, "kind": "open", "text": f"{CANARY} question?"}]
    run = Run.objects.create(survey=survey, owner=owner, title=survey.title, questions=questions, job=job)
    respondent = Respondent.objects.create(run=run, persona=persona, profile={"name": f"{CANARY} Persona"},
                                           state=RespondentState.DONE)  # fmt: skip
    Answer.objects.create(respondent=respondent, question_id=question.pk, shown_position=1, text=f"{CANARY} answer")
    us = bundled_population("us_adults")
    panel = Panel.objects.create(
        owner=owner, name=f"{CANARY} panel", size=1, seed=1, target_kind="bundled", target_key="us_adults",
        target=us.to_json(), folder=folder,
    )  # fmt: skip
    PanelMember.objects.create(panel=panel, position=0, core={"gender": "Female"}, persona=persona, state="done")
    population_file = PopulationFile.objects.create(owner=owner, name=f"{CANARY} population", data=us.to_json())
    microdata = parse_microdata_csv(_microdata_csv(), filename="m.csv")
    microdata_file = MicrodataFile.objects.create(
        owner=owner, name=f"{CANARY} microdata", row_count=len(microdata.rows), data=microdata.to_json()
    )
    mapping = {
        "questions": [{"column": "q1", "kind": "scale", "label": f"{CANARY} item", "text": "", "scale": ["1", "2"],
                       "options": None, "missing": [], "n_answered": 2, "n_missing": 0}],
        "demographics": [], "weight": None, "ignored": [],
    }  # fmt: skip
    reference = Reference.objects.create(
        owner=owner, name=f"{CANARY} reference", filename="r.csv", row_count=2,
        table={"columns": ["q1"], "rows": [["1"], ["2"]], "encoding": "utf-8"}, mapping=mapping,
    )  # fmt: skip
    verdict = {"passed": False, "summary": f"{CANARY} verdict", "checks": [], "rule": {}}
    validation = Validation.objects.create(
        owner=owner, reference=reference, reference_name=reference.name, mapping=mapping, size=1, seed=1,
        state=ValidationState.DONE, panel=panel, survey=survey, run=run,
        scorecard={"version": 1, "questions": [], "open_questions": [], "verdict": verdict},
    )  # fmt: skip
    return World(
        owner, other, folder, persona, brief, focus_group, asset, message, job, token, export_job, checkout,
        survey, run, respondent, panel, population_file, microdata_file, reference, validation,
    )  # fmt: skip


def _microdata_csv() -> bytes:
    rows = ["age,gender,weight"] + [f"{20 + i % 50},{'Female' if i % 2 else 'Male'},1.{i % 7}" for i in range(40)]
    return "\n".join(rows).encode()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


Kwargs = Callable[[World], dict]

fg = lambda w: {"fg_id": w.focus_group.pk}  # noqa: E731
persona = lambda w: {"persona_id": w.persona.pk}  # noqa: E731
job = lambda w: {"job_id": str(w.job.pk)}  # noqa: E731

# Routes that name one of the owner's objects.
OBJECT_ROUTES: dict[str, Kwargs] = {
    "panels:detail": lambda w: {"panel_id": w.panel.pk},
    "panels:progress": lambda w: {"panel_id": w.panel.pk},
    "panels:composition": lambda w: {"panel_id": w.panel.pk},
    "panels:export": lambda w: {"panel_id": w.panel.pk},
    "panels:quality": lambda w: {"panel_id": w.panel.pk},
    "panels:quality_start": lambda w: {"panel_id": w.panel.pk},
    "panels:delete": lambda w: {"panel_id": w.panel.pk},
    "panels:composition_export": lambda w: {"panel_id": w.panel.pk, "fmt": "csv"},
    "panels:population_delete": lambda w: {"population_id": w.population_file.pk},
    "panels:microdata_delete": lambda w: {"microdata_id": w.microdata_file.pk},
    "panels:folder_composition": lambda w: {"folder_id": w.folder.pk},
    "panels:folder_composition_export": lambda w: {"folder_id": w.folder.pk, "fmt": "csv"},
    "api:panel-detail": lambda w: {"panel_id": w.panel.pk},
    "api:panel-quality": lambda w: {"panel_id": w.panel.pk},
    "api:panel-composition": lambda w: {"panel_id": w.panel.pk},
    "api:panel-composition-csv": lambda w: {"panel_id": w.panel.pk},
    "api:panel-target-marginals-detail": lambda w: {"population_id": w.population_file.pk},
    "api:panel-target-microdata-detail": lambda w: {"microdata_id": w.microdata_file.pk},
    "validation:reference": lambda w: {"reference_id": w.reference.pk},
    "validation:mapping": lambda w: {"reference_id": w.reference.pk},
    "validation:start": lambda w: {"reference_id": w.reference.pk},
    "validation:reference_delete": lambda w: {"reference_id": w.reference.pk},
    "validation:detail": lambda w: {"validation_id": w.validation.pk},
    "validation:progress": lambda w: {"validation_id": w.validation.pk},
    "validation:rescore": lambda w: {"validation_id": w.validation.pk},
    "validation:replay": lambda w: {"validation_id": w.validation.pk},
    "validation:export": lambda w: {"validation_id": w.validation.pk, "fmt": "json"},
    "validation:delete": lambda w: {"validation_id": w.validation.pk},
    "api:validation-reference-detail": lambda w: {"reference_id": w.reference.pk},
    "api:validation-reference-mapping": lambda w: {"reference_id": w.reference.pk},
    "api:validation-detail": lambda w: {"validation_id": w.validation.pk},
    "api:validation-scorecard": lambda w: {"validation_id": w.validation.pk},
    "api:validation-scorecard-csv": lambda w: {"validation_id": w.validation.pk},
    "settings_token_revoke": lambda w: {"token_id": w.token.pk},
    "jobs_cancel": job,
    "jobs_retry": job,
    "personas:folder_rename": lambda w: {"folder_id": w.folder.pk},
    "personas:folder_delete": lambda w: {"folder_id": w.folder.pk},
    "personas:detail": persona,
    "personas:edit": persona,
    "personas:delete": persona,
    "personas:restore": lambda w: {"persona_id": w.persona.pk, "number": 1},
    "personas:brief": lambda w: {"brief_id": w.brief.pk},
    "personas:brief_personas": lambda w: {"brief_id": w.brief.pk},
    "personas:modify": persona,
    "focusgroups:edit": fg,
    "focusgroups:archive": fg,
    "focusgroups:reopen": fg,
    "focusgroups:delete": fg,
    "focusgroups:assets": fg,
    "focusgroups:asset_delete": lambda w: {"fg_id": w.focus_group.pk, "asset_id": w.asset.pk},
    "focusgroups:asset_image": lambda w: {"fg_id": w.focus_group.pk, "asset_id": w.asset.pk},
    "focusgroups:guide": fg,
    "focusgroups:guide_generate": fg,
    "focusgroups:guide_export": fg,
    "focusgroups:detail": fg,
    "focusgroups:post_message": fg,
    "focusgroups:transcript": fg,
    "focusgroups:live_state": fg,
    "focusgroups:retry_answer": lambda w: {"fg_id": w.focus_group.pk, "message_id": w.message.pk},
    "focusgroups:set_status": fg,
    "focusgroups:autonomous": lambda w: {"fg_id": w.focus_group.pk, "action": "start"},
    "focusgroups:compare": fg,
    "focusgroups:replay": fg,
    "focusgroups:report": fg,
    "focusgroups:analyse": fg,
    "focusgroups:export": lambda w: {"fg_id": w.focus_group.pk, "kind": "transcript-csv"},
    "focusgroups:quality": fg,
    "focusgroups:quality_check": fg,
    "settings_data_download": lambda w: {"job_id": str(w.export_job.pk)},
    "billing:checkout-status": lambda w: {"session_id": w.checkout.stripe_id},
    "api:me-export-download": lambda w: {"job_id": str(w.export_job.pk)},
    "api:billing-checkout-detail": lambda w: {"session_id": w.checkout.stripe_id},
    "api:job-detail": job,
    "api:job-cancel": job,
    "api:job-retry": job,
    "api:persona-brief": lambda w: {"brief_id": w.brief.pk},
    "api:persona-detail": persona,
    "api:persona-versions": persona,
    "api:persona-restore": lambda w: {"persona_id": w.persona.pk, "number": 1},
    "api:persona-modify": persona,
    "api:folder-detail": lambda w: {"folder_id": w.folder.pk},
    "api:focusgroup-detail": fg,
    "api:focusgroup-participants": fg,
    "api:focusgroup-reopen": fg,
    "api:focusgroup-live-themes": fg,
    "api:focusgroup-assets": fg,
    "api:focusgroup-asset": lambda w: {"fg_id": w.focus_group.pk, "asset_id": w.asset.pk},
    "api:focusgroup-guide": fg,
    "api:focusgroup-guide-generate": fg,
    "api:focusgroup-messages": fg,
    "api:focusgroup-message-retry": lambda w: {"fg_id": w.focus_group.pk, "message_id": w.message.pk},
    "api:focusgroup-autonomous": fg,
    "api:focusgroup-transcript": fg,
    "api:focusgroup-analysis": fg,
    "api:focusgroup-export": lambda w: {"fg_id": w.focus_group.pk, "kind": "transcript-csv"},
    "api:focusgroup-conformity": fg,
    "api:focusgroup-quality": fg,
    "api:focusgroup-quality-check": fg,
    "surveys:detail": lambda w: {"survey_id": w.survey.pk},
    "surveys:delete": lambda w: {"survey_id": w.survey.pk},
    "surveys:preview": lambda w: {"survey_id": w.survey.pk},
    "surveys:question_add": lambda w: {"survey_id": w.survey.pk},
    "surveys:question_edit": lambda w: {"survey_id": w.survey.pk, "question_id": w.survey.questions.first().pk},
    "surveys:question_delete": lambda w: {"survey_id": w.survey.pk, "question_id": w.survey.questions.first().pk},
    "surveys:question_move": lambda w: {"survey_id": w.survey.pk, "question_id": w.survey.questions.first().pk},
    "surveys:run_start": lambda w: {"survey_id": w.survey.pk},
    "surveys:run": lambda w: {"run_id": w.run.pk},
    "surveys:run_progress": lambda w: {"run_id": w.run.pk},
    "surveys:run_themes": lambda w: {"run_id": w.run.pk},
    "surveys:run_themes_status": lambda w: {"run_id": w.run.pk},
    "surveys:run_replay": lambda w: {"run_id": w.run.pk},
    "surveys:run_quality": lambda w: {"run_id": w.run.pk},
    "surveys:run_quality_status": lambda w: {"run_id": w.run.pk},
    "surveys:respondent": lambda w: {"run_id": w.run.pk, "respondent_id": w.respondent.pk},
    "surveys:export": lambda w: {"run_id": w.run.pk, "fmt": "csv"},
    "api:survey-detail": lambda w: {"survey_id": w.survey.pk},
    "api:survey-runs": lambda w: {"survey_id": w.survey.pk},
    "api:survey-run-detail": lambda w: {"run_id": w.run.pk},
    "api:survey-run-results": lambda w: {"run_id": w.run.pk},
    "api:survey-run-themes": lambda w: {"run_id": w.run.pk},
    "api:survey-run-quality": lambda w: {"run_id": w.run.pk},
    "api:survey-run-export": lambda w: {"run_id": w.run.pk, "fmt": "json"},
}

# Object routes whose GET is a 404 for the owner too until the thing exists; the
# owner's 404 says why, which proves the lookup found the owner's object.
OWNER_404_UNTIL_CREATED: dict[str, str] = {
    "api:focusgroup-analysis": "has not been analysed yet",
    "api:focusgroup-conformity": "Conformity is not measured",
}

# Routes without an object: lists, forms and the caller's own account. They are
# scoped by the signed-in user; the other user must not see the owner's data.
OWN_SCOPE_ROUTES: set[str] = {
    "panels:index",
    "panels:new",
    "panels:population_upload",
    "panels:population_example",
    "panels:microdata_upload",
    "api:panel-list",
    "api:panel-targets",
    "api:panel-target-marginals",
    "api:panel-target-microdata",
    "validation:index",
    "validation:upload",
    "api:validation-reference-list",
    "api:validation-list",
    "dashboard",
    "settings_profile",
    "settings_tokens",
    "jobs_list",
    "jobs_panel",
    "jobs_panel_dismiss",
    "jobs_worker_check",
    "jobs_llm_check",
    "personas:index",
    "personas:create",
    "personas:move",
    "personas:export",
    "personas:import",
    "personas:folder_create",
    "personas:generate",
    "personas:describe_image",
    "focusgroups:index",
    "focusgroups:create",
    "focusgroups:persona_picker",
    "usage:index",
    "billing:index",
    "billing:buy",
    "settings_data",
    "settings_data_status",
    "settings_data_export",
    "settings_delete",
    "api:me",
    "api:credits",
    "api:credit-ledger",
    "api:job-list",
    "api:job-worker-check",
    "api:job-llm-check",
    "api:usage",
    "api:usage-events",
    "api:persona-list",
    "api:persona-move",
    "api:persona-export",
    "api:persona-import",
    "api:persona-generate",
    "api:persona-describe-image",
    "api:folder-list",
    "api:focusgroup-list",
    "api:me-export",
    "api:billing-packs",
    "api:billing-checkout",
    "surveys:index",
    "surveys:import",
    "surveys:import_example",
    "api:survey-list",
    "api:survey-import",
}

# Pages anyone may open; signed out they show the public landing page.
ANONYMOUS_ALLOWED = {"dashboard"}

# Routes that hold nobody's data, or that only staff may call (checked in test_staff_only.py).
PUBLIC_OR_STAFF_ROUTES: dict[str, str] = {
    "healthz": "public: reports the state of the services, no user data",
    "favicon": "public: a redirect to the static icon",
    "account_deleted": "public goodbye page shown after an account is deleted",
    "billing:stripe-webhook": "Stripe's signed callback; a bad signature is a 400 (tests/billing)",
    "djstripe:djstripe_webhook_by_uuid": "Stripe's signed callback at dj-stripe's URL, same view (tests/billing)",
    "api:staff-usage-summary": "staff only (IsAdminUser); non-staff get 403: tests/backoffice/test_access.py",
}


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace or ""
            joined = f"{namespace}:{inner}" if namespace and inner else (inner or namespace)
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), joined)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            if route.startswith(EXCLUDED_PREFIXES):
                continue
            name = f"{namespace}:{pattern.name}" if namespace else (pattern.name or f"<unnamed {route}>")
            yield name, route


def product_routes() -> dict[str, str]:
    return dict(_walk(get_resolver().url_patterns))


def test_every_route_has_a_case():
    routes = product_routes()
    cased = set(OBJECT_ROUTES) | OWN_SCOPE_ROUTES | set(PUBLIC_OR_STAFF_ROUTES)
    missing = {name: route for name, route in routes.items() if name not in cased}
    assert not missing, (
        f"Routes without an ownership case (add each to a table in tests/security/test_ownership_matrix.py): {missing}"
    )
    stale = cased - set(routes)
    assert not stale, f"Cases for routes that no longer exist: {sorted(stale)}"
    overlap = (set(OBJECT_ROUTES) & OWN_SCOPE_ROUTES) | (
        (set(OBJECT_ROUTES) | OWN_SCOPE_ROUTES) & set(PUBLIC_OR_STAFF_ROUTES)
    )
    assert not overlap, f"Routes in more than one table: {sorted(overlap)}"


def _client_for(user, name: str) -> Client:
    if name.startswith("api:"):
        client = APIClient()
        client.force_authenticate(user)
        return client
    client = Client()
    client.force_login(user)
    return client


def _methods(name: str) -> tuple[str, ...]:
    return ("get", "post", "put", "patch", "delete") if name.startswith("api:") else ("get", "post")


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


@pytest.mark.parametrize("name", sorted(OBJECT_ROUTES))
def test_another_user_gets_404_for_every_object_route(world, name):
    url = reverse(name, kwargs=OBJECT_ROUTES[name](world))
    intruder = _client_for(world.other, name)
    statuses = {}
    for method in _methods(name):
        response = getattr(intruder, method)(url, **({"format": "json"} if name.startswith("api:") else {}))
        statuses[method] = response.status_code
        assert response.status_code in (404, 405), f"{method.upper()} {url} by another user: {response.status_code}"
        assert CANARY not in _body(response), f"{method.upper()} {url} showed the owner's data to another user"
    assert 404 in statuses.values(), f"{url} never answered 404 to another user: {statuses}"

    # The owner's objects are all still there, unchanged.
    world.focus_group.refresh_from_db()
    world.persona.refresh_from_db()
    world.folder.refresh_from_db()
    world.token.refresh_from_db()
    world.asset.refresh_from_db()
    assert world.focus_group.title == f"{CANARY} session" and not world.focus_group.archived
    assert world.focus_group.status == "draft"
    assert Survey.objects.filter(pk=world.survey.pk).exists() and world.survey.questions.count() == 1
    assert world.token.revoked_at is None
    assert Reference.objects.filter(pk=world.reference.pk).exists()
    assert Validation.objects.filter(pk=world.validation.pk, state=ValidationState.DONE).exists()

    owner = _client_for(world.owner, name)
    response = owner.get(url)
    if name in OWNER_404_UNTIL_CREATED:
        assert OWNER_404_UNTIL_CREATED[name] in _body(response), _body(response)
        return
    assert response.status_code != 404, (
        f"the case for {name} does not point at the owner's object: the owner got 404 from GET {url}"
    )


@pytest.mark.parametrize("name", sorted(OWN_SCOPE_ROUTES))
def test_routes_without_an_object_never_show_another_users_data(world, name):
    url = reverse(name)
    response = _client_for(world.other, name).get(url)
    assert response.status_code < 500, f"GET {url}: {response.status_code}"
    assert CANARY not in _body(response), f"GET {url} showed the owner's data to another user"


@pytest.mark.parametrize("name", sorted(OWN_SCOPE_ROUTES | set(OBJECT_ROUTES)))
def test_anonymous_callers_are_sent_to_sign_in(world, name):
    kwargs = OBJECT_ROUTES[name](world) if name in OBJECT_ROUTES else {}
    url = reverse(name, kwargs=kwargs)
    response = (APIClient() if name.startswith("api:") else Client()).get(url)
    if name in ANONYMOUS_ALLOWED:
        assert response.status_code == 200
    elif name.startswith("api:"):
        assert response.status_code in (401, 403, 405), f"GET {url} anonymous: {response.status_code}"
    else:
        assert response.status_code in (302, 405), f"GET {url} anonymous: {response.status_code}"
        if response.status_code == 302:
            assert "/accounts/login/" in response["Location"]
    assert CANARY not in _body(response)
