"""Every list page and list endpoint runs the same queries for 10 rows as for 1,000 (issue #22).

Each route builds 10 rows for the owner (``bulk_create``: fast), loads the page or endpoint once to warm
the per-process caches (app settings, content types, the quota banner), counts the queries of a second
load, adds 990 more rows and counts again. The two counts must be equal, and at most the route's bound: a
small number chosen per route from what the page needs (stated beside each route, with what it reads).

API routes authenticate with a real personal token (``Authorization: Bearer``), so the count includes the
token lookup, as a script's request does; pages use a logged-in browser session (its session row and user).
"""

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import CreditTransaction, CreditTransactionKind
from cohorta.accounts.models import ApiToken, hash_token
from cohorta.accounts.services import api_token_create
from cohorta.jobs.models import Job, JobState
from focusgroups.models import FocusGroup, Message, MessageRole, Participant
from panels.models import MemberState, Panel, PanelMember, PopulationFile, TargetKind
from panels.population import BUNDLED
from personas.models import Folder, GenerationBrief, Persona, PersonaVersion
from surveys.models import Question, QuestionKind, Respondent, RespondentState, Run, Survey
from tests.personas.factories import PersonaFactory
from usage.models import UsageEvent
from validation.models import Reference, Validation, ValidationState

pytestmark = pytest.mark.django_db

SMALL, LARGE = 10, 1000
_serial = itertools.count(1)


def _n() -> int:
    return next(_serial)


@dataclass
class Ctx:
    """What a route's rows hang from (one session, survey, run or panel), made once per test."""

    owner: object
    objects: dict = field(default_factory=dict)

    def once(self, key: str, make: Callable):
        if key not in self.objects:
            self.objects[key] = make()
        return self.objects[key]


# --- builders: each adds ``count`` more rows of one kind for the owner ------------------------------


def _personas(ctx: Ctx, count: int) -> list[Persona]:
    folders = ctx.once(
        "folders",
        lambda: Folder.objects.bulk_create(Folder(owner=ctx.owner, name=f"Segment {_n()}") for _ in range(3)),
    )
    personas = [
        PersonaFactory.build(owner=ctx.owner, folder=random.choice([*folders, None]), tags=["commuter", "urban"])
        for _ in range(count)
    ]
    return Persona.objects.bulk_create(personas, batch_size=500)


def _a_few_personas(ctx: Ctx) -> list[Persona]:
    return ctx.once("six", lambda: _personas(ctx, 6))


def _folders(ctx: Ctx, count: int) -> None:
    folders = Folder.objects.bulk_create(Folder(owner=ctx.owner, name=f"Folder {_n()}") for _ in range(count))
    # Each folder holds a persona, so the counts are not all zero.
    Persona.objects.bulk_create(
        (PersonaFactory.build(owner=ctx.owner, folder=folder) for folder in folders), batch_size=500
    )


def _focus_groups(ctx: Ctx, count: int) -> None:
    personas = _a_few_personas(ctx)
    groups = FocusGroup.objects.bulk_create(
        FocusGroup(owner=ctx.owner, title=f"Session {_n()}", objective="What makes people switch", last_sequence=1)
        for _ in range(count)
    )
    Participant.objects.bulk_create(
        Participant(focus_group=group, persona=persona, position=position)
        for group in groups
        for position, persona in enumerate(personas[:3])
    )
    Message.objects.bulk_create(
        Message(
            focus_group=group,
            sequence=1,
            role=MessageRole.PERSONA,
            persona=personas[0],
            speaker_name=personas[0].name,
            content="I would switch for a clearer price.",
        )
        for group in groups
    )


def _session(ctx: Ctx) -> FocusGroup:
    def make():
        group = FocusGroup.objects.create(owner=ctx.owner, title="Long session", objective="Throughput")
        Participant.objects.bulk_create(
            Participant(focus_group=group, persona=persona, position=position)
            for position, persona in enumerate(_a_few_personas(ctx))
        )
        return group

    return ctx.once("session", make)


def _messages(ctx: Ctx, count: int) -> None:
    group = _session(ctx)
    personas = _a_few_personas(ctx)
    start = group.last_sequence
    rows = []
    for n in range(start + 1, start + count + 1):
        persona = personas[n % len(personas)] if n % 4 else None
        rows.append(
            Message(
                focus_group=group,
                sequence=n,
                role=MessageRole.PERSONA if persona else MessageRole.RESEARCHER,
                persona=persona,
                speaker_name=persona.name if persona else "Researcher",
                content=f"Turn {n}: the price per litre should be on the front.",
            )
        )
    Message.objects.bulk_create(rows, batch_size=500)
    group.last_sequence = start + count
    FocusGroup.objects.filter(pk=group.pk).update(last_sequence=group.last_sequence)


def _done_jobs(owner, count: int, kind: str, target_model=None) -> list[Job]:
    now = timezone.now()
    return Job.objects.bulk_create(
        Job(
            owner=owner,
            kind=kind,
            state=JobState.DONE,
            progress_done=1,
            progress_total=1,
            started_at=now,
            finished_at=now,
            target_type=ContentType.objects.get_for_model(target_model) if target_model else None,
        )
        for _ in range(count)
    )


def _surveys(ctx: Ctx, count: int) -> None:
    surveys = Survey.objects.bulk_create(Survey(owner=ctx.owner, title=f"Survey {_n()}") for _ in range(count))
    Question.objects.bulk_create(
        Question(survey=survey, position=position, kind=QuestionKind.LIKERT5, text="How likely are you to switch?")
        for survey in surveys
        for position in range(2)
    )
    jobs = _done_jobs(ctx.owner, count, "survey_run", Run)
    Run.objects.bulk_create(
        Run(survey=survey, owner=ctx.owner, job=job, title=survey.title, questions=[])
        for survey, job in zip(surveys, jobs, strict=True)
    )


def _survey(ctx: Ctx) -> Survey:
    def make():
        survey = Survey.objects.create(owner=ctx.owner, title="Oat milk")
        Question.objects.create(survey=survey, position=0, kind=QuestionKind.LIKERT5, text="How likely?")
        return survey

    return ctx.once("survey", make)


def _runs(ctx: Ctx, count: int) -> None:
    survey = _survey(ctx)
    folders = ctx.once("run-folder", lambda: [Folder.objects.create(owner=ctx.owner, name="Panel folder")])
    jobs = _done_jobs(ctx.owner, count, "survey_run", Run)
    runs = Run.objects.bulk_create(
        Run(
            survey=survey,
            owner=ctx.owner,
            job=job,
            title=survey.title,
            questions=[],
            panel_label="Panel folder",
            panel_folder=folders[0],
        )
        for job in jobs
    )
    Respondent.objects.bulk_create(
        Respondent(run=run, position=position, profile={"name": f"P{position}"}, state=RespondentState.DONE)
        for run in runs
        for position in range(2)
    )
    # And as many runs on a generated panel: half still generating (a job naming its briefs), half that
    # never started (only the briefs linked), each with a persona already made.
    brief = GenerationBrief.objects.create(owner=ctx.owner, description="Oat-milk drinkers", count=2)
    Persona.objects.bulk_create([PersonaFactory.build(owner=ctx.owner, brief=brief)])
    generating = Job.objects.bulk_create(
        Job(owner=ctx.owner, kind="survey_panel", state=JobState.RUNNING, params={"brief_ids": [brief.pk]})
        for _ in range(count // 2)
    )
    waiting = Run.objects.bulk_create(
        Run(
            survey=survey,
            owner=ctx.owner,
            title=survey.title,
            questions=[],
            panel_size=2,
            panel_description="Oat-milk drinkers",
            panel_folder=folders[0],
            panel_job=job,
            not_started="" if job else "The panel's generation stopped.",
        )
        for job in [*generating, *[None] * (count - count // 2)]
    )
    Run.panel_briefs.through.objects.bulk_create(
        Run.panel_briefs.through(run_id=run.pk, generationbrief_id=brief.pk) for run in waiting
    )


def _active_run(ctx: Ctx) -> Run:
    """A run still asking: its page lists the respondents (a finished run's page shows results)."""

    def make():
        survey = _survey(ctx)
        job = Job.objects.create(owner=ctx.owner, kind="survey_run", state=JobState.RUNNING, progress_total=1000)
        return Run.objects.create(survey=survey, owner=ctx.owner, job=job, title=survey.title, questions=[])

    return ctx.once("run", make)


def _respondents(ctx: Ctx, count: int) -> None:
    run = _active_run(ctx)
    personas = _personas(ctx, count)
    start = Respondent.objects.filter(run=run).count()
    states = [RespondentState.DONE, RespondentState.RUNNING, RespondentState.PENDING, RespondentState.FAILED]
    Respondent.objects.bulk_create(
        (
            Respondent(
                run=run,
                persona=persona,
                position=start + index,
                profile={"name": persona.name, "age": persona.age, "gender": persona.gender},
                state=states[index % len(states)],
            )
            for index, persona in enumerate(personas)
        ),
        batch_size=500,
    )


def _population():
    return next(iter(BUNDLED.values()))


def _panels(ctx: Ctx, count: int) -> None:
    population = _population()
    target = population.to_json()
    upload = ctx.once(
        "population-file",
        lambda: PopulationFile.objects.create(owner=ctx.owner, name="Our customers", data=target),
    )
    folders = Folder.objects.bulk_create(Folder(owner=ctx.owner, name=f"Panel {_n()}") for _ in range(count))
    jobs = _done_jobs(ctx.owner, count, "panel_build", Panel)
    panels = Panel.objects.bulk_create(
        Panel(
            owner=ctx.owner,
            name=folder.name,
            size=2,
            seed=1,
            target_kind=TargetKind.MARGINALS,
            population_file=upload,
            target=target,
            folder=folder,
            job=job,
        )
        for folder, job in zip(folders, jobs, strict=True)
    )
    PanelMember.objects.bulk_create(
        PanelMember(panel=panel, position=position, core={}, state=MemberState.DONE)
        for panel in panels
        for position in range(2)
    )


def _panel(ctx: Ctx) -> Panel:
    def make():
        folder = Folder.objects.create(owner=ctx.owner, name="A panel")
        job = Job.objects.create(owner=ctx.owner, kind="panel_build", state=JobState.RUNNING, progress_total=1000)
        return Panel.objects.create(
            owner=ctx.owner,
            name="A panel",
            size=1000,
            seed=1,
            target_kind=TargetKind.BUNDLED,
            target_key=_population().key,
            target=_population().to_json(),
            folder=folder,
            job=job,
        )

    return ctx.once("panel", make)


def _members(ctx: Ctx, count: int) -> None:
    panel = _panel(ctx)
    population = _population()
    core = {dimension.key: dimension.categories[0] for dimension in population.dimensions}
    start = PanelMember.objects.filter(panel=panel).count()
    personas = Persona.objects.bulk_create(
        (PersonaFactory.build(owner=ctx.owner, folder=panel.folder) for _ in range(count // 2)), batch_size=500
    )
    states = [MemberState.DONE, MemberState.FAILED, MemberState.PENDING, MemberState.RUNNING]
    members = []
    for index in range(count):
        persona = personas[index // 2] if index % 2 == 0 and index // 2 < len(personas) else None
        state = MemberState.DONE if persona else states[index % len(states) or 1]
        members.append(PanelMember(panel=panel, position=start + index, core=core, persona=persona, state=state))
    PanelMember.objects.bulk_create(members, batch_size=500)


def _references(ctx: Ctx, count: int) -> None:
    table = {"columns": ["q1", "age"], "rows": [["4", "30"], ["2", "41"]]}
    mapping = {"questions": [{"column": "q1", "kind": "likert5"}], "demographics": []}
    Reference.objects.bulk_create(
        Reference(owner=ctx.owner, name=f"Reference {_n()}", table=table, row_count=2, mapping=mapping)
        for _ in range(count)
    )


def _validations(ctx: Ctx, count: int) -> None:
    reference = ctx.once(
        "reference",
        lambda: Reference.objects.create(owner=ctx.owner, name="GSS 2018", table={"columns": [], "rows": []}),
    )
    panel = _panel(ctx)
    run = _active_run(ctx)
    scorecard = {"verdict": {"passed": True, "summary": "Close to the people"}, "questions": []}
    Validation.objects.bulk_create(
        Validation(
            owner=ctx.owner,
            reference=reference,
            reference_name=reference.name,
            mapping={},
            size=10,
            seed=index,
            state=ValidationState.DONE if index % 2 else ValidationState.SURVEY,
            panel=panel,
            run=run,
            scorecard=scorecard,
        )
        for index in range(count)
    )


def _usage_events(ctx: Ctx, count: int) -> None:
    group = _session(ctx)
    persona = _a_few_personas(ctx)[0]
    jobs = _done_jobs(ctx.owner, 3, "persona_generate")
    now = timezone.now()
    UsageEvent.objects.bulk_create(
        (
            UsageEvent(
                user=ctx.owner,
                job=jobs[index % 3],
                focus_group_id=group.pk if index % 2 else None,
                persona_id=persona.pk,
                feature="persona_response",
                provider="openai",
                model="gpt-5.4",
                model_alias="main",
                input_tokens=100,
                output_tokens=50,
                cost_usd="0.00100000",
                created_at=now - timedelta(minutes=index),
            )
            for index in range(count)
        ),
        batch_size=500,
    )


def _jobs(ctx: Ctx, count: int) -> None:
    group = _session(ctx)
    kinds = [("persona_generate", None), ("focus_group_guide", FocusGroup), ("survey_run", Run)]
    now = timezone.now()
    Job.objects.bulk_create(
        Job(
            owner=ctx.owner,
            kind=kinds[index % 3][0],
            state=[JobState.DONE, JobState.FAILED, JobState.RUNNING][index % 3],
            target_type=ContentType.objects.get_for_model(kinds[index % 3][1]) if kinds[index % 3][1] else None,
            target_id=str(group.pk),
            progress_total=3,
            progress_done=1,
            started_at=now,
            finished_at=now,
            error="The model timed out." if index % 3 == 1 else "",
            created_at=now - timedelta(seconds=index),
        )
        for index in range(count)
    )


def _tokens(ctx: Ctx, count: int) -> None:
    now = timezone.now()
    ApiToken.objects.bulk_create(
        ApiToken(
            user=ctx.owner,
            name=f"Script {n}",
            prefix=f"coh_{n:06d}",
            key_hash=hash_token(f"raw-{ctx.owner.pk}-{n}"),
            last_used_at=now,
            revoked_at=now if n % 3 == 0 else None,
        )
        for n in (_n() for _ in range(count))
    )


def _ledger(ctx: Ctx, count: int) -> None:
    admin = ctx.once("admin", lambda: type(ctx.owner).objects.create_user(f"admin{_n()}@example.com", is_staff=True))
    now = timezone.now()
    CreditTransaction.objects.bulk_create(
        CreditTransaction(
            user=ctx.owner,
            user_email=ctx.owner.email,
            kind=CreditTransactionKind.GRANT,
            delta=1,
            balance_after=1,
            reference=f"focusgroup:{n}",
            description="Granted by an admin",
            idempotency_key=f"test-ledger:{ctx.owner.pk}:{n}",
            created_by=admin,
            created_at=now - timedelta(seconds=n),
        )
        for n in (_n() for _ in range(count))
    )


def _versions(ctx: Ctx, count: int) -> None:
    persona = ctx.once("versioned", lambda: _personas(ctx, 1)[0])
    start = PersonaVersion.objects.filter(persona=persona).count()
    PersonaVersion.objects.bulk_create(
        PersonaVersion(persona=persona, number=start + n, data={"name": persona.name, "age": 20 + n % 50})
        for n in range(1, count + 1)
    )
    Persona.objects.filter(pk=persona.pk).update(version=start + count)


# --- the routes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    build: Callable[[Ctx, int], None]
    url: Callable[[Ctx], str]
    api: bool
    bound: int  # at most this many queries, with 10 rows and with 1,000


def _u(name: str, *args) -> Callable[[Ctx], str]:
    return lambda ctx: reverse(name, args=args)


# Bounds: what each route reads today (in the comment) plus a little room, so a page that starts reading
# one more thing per request still passes while a query per row never does.
ROUTES = [
    # Pages: the browser session and its user (2), then what each page lists.
    Route("personas library", _personas, _u("personas:index"), api=False, bound=8),  # counts, folders, page: 6
    Route("focus groups list", _focus_groups, _u("focusgroups:index"), api=False, bound=9),  # + participants: 7
    Route("persona picker", _personas, _u("focusgroups:persona_picker"), api=False, bound=4),  # page and total: 3
    Route(
        "session page (messages)",
        _messages,
        lambda ctx: reverse("focusgroups:detail", args=[_session(ctx).pk]),
        api=False,
        bound=16,
    ),  # guide, run, themes, jobs, checks: 14
    Route(
        "session transcript",
        _messages,
        lambda ctx: reverse("focusgroups:transcript", args=[_session(ctx).pk]),
        api=False,
        bound=6,
    ),  # 4
    Route("surveys list", _surveys, _u("surveys:index"), api=False, bound=6),  # annotated counts: 4
    Route(
        "a survey's runs (its page)",
        _runs,
        lambda ctx: reverse("surveys:detail", args=[_survey(ctx).pk]),
        api=False,
        bound=12,
    ),  # questions, runs, folders, panels, balance: 10
    Route(
        "a run's respondents",
        _respondents,
        lambda ctx: reverse("surveys:run", args=[_active_run(ctx).pk]),
        api=False,
        bound=7,
    ),  # run, counts, respondents: 5
    Route("panels list", _panels, _u("panels:index"), api=False, bound=7),  # panels with jobs, uploads: 5
    Route(
        "a panel's members", _members, lambda ctx: reverse("panels:detail", args=[_panel(ctx).pk]), api=False, bound=10
    ),  # counts, members, composition, check: 8
    Route("validation: references", _references, _u("validation:index"), api=False, bound=6),  # 4
    Route("validation: validations", _validations, _u("validation:index"), api=False, bound=6),  # 4
    Route(
        "a reference's validations",
        _validations,
        lambda ctx: reverse("validation:reference", args=[ctx.objects["reference"].pk]),
        api=False,
        bound=7,
    ),  # 5
    Route("usage page", _usage_events, _u("usage:index"), api=False, bound=13),  # one per breakdown: 11
    Route("jobs list", _jobs, _u("jobs_list"), api=False, bound=6),  # count and page: 4
    Route("jobs panel", _jobs, _u("jobs_panel"), api=False, bound=6),  # active, then ended: 4
    Route("API tokens page", _tokens, _u("settings_tokens"), api=False, bound=5),  # the tokens: 3
    Route("billing page (ledger)", _ledger, _u("billing:index"), api=False, bound=9),  # packs, balance, page: 7
    Route("dashboard", _focus_groups, _u("dashboard"), api=False, bound=8),  # 6
    # API: the token (1), then what each endpoint lists (a page of it and its count, for paged ones).
    Route("API personas", _personas, _u("api:persona-list"), api=True, bound=4),  # 3
    Route("API folders", _folders, _u("api:folder-list"), api=True, bound=4),  # 3
    Route(
        "API persona versions",
        _versions,
        lambda ctx: reverse("api:persona-versions", args=[ctx.objects["versioned"].pk]),
        api=True,
        bound=4,
    ),  # 3
    Route("API focus groups", _focus_groups, _u("api:focusgroup-list"), api=True, bound=5),  # + participants: 4
    Route(
        "API messages (paged)",
        _messages,
        lambda ctx: reverse("api:focusgroup-messages", args=[_session(ctx).pk]),
        api=True,
        bound=4,
    ),  # 3
    Route(
        "API transcript",
        _messages,
        lambda ctx: reverse("api:focusgroup-transcript", args=[_session(ctx).pk]),
        api=True,
        bound=4,
    ),  # 3
    Route("API surveys", _surveys, _u("api:survey-list"), api=True, bound=4),  # 3
    # The survey, its runs, their respondents by state (one grouped query), generated panels (5 at most): 9.
    Route("API survey runs", _runs, lambda ctx: reverse("api:survey-runs", args=[_survey(ctx).pk]), api=True, bound=10),
    Route("API panels", _panels, _u("api:panel-list"), api=True, bound=4),  # 3
    Route("API panel targets", _panels, _u("api:panel-targets"), api=True, bound=6),  # uploads of each kind: 5
    Route("API references", _references, _u("api:validation-reference-list"), api=True, bound=4),  # 3
    Route("API validations", _validations, _u("api:validation-list"), api=True, bound=4),  # 3
    Route("API usage events", _usage_events, _u("api:usage-events"), api=True, bound=4),  # 3
    Route("API jobs", _jobs, _u("api:job-list"), api=True, bound=4),  # 3
    Route("API credit ledger", _ledger, _u("api:credit-ledger"), api=True, bound=4),  # 3
]


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:500])
    return len(queries)


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
def test_a_list_costs_the_same_queries_for_10_and_1000_rows(route, owner, client):
    ctx = Ctx(owner=owner)
    if route.api:
        _, raw = api_token_create(user=owner, name="query counts")
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    else:
        client.force_login(owner)
        http = client
    route.build(ctx, SMALL)
    url = route.url(ctx)
    http.get(url)  # warm the per-process caches (app settings, content types, the quota banner)
    small = _count(http, url)
    route.build(ctx, LARGE - SMALL)
    large = _count(http, url)
    assert large == small, f"{route.name}: {small} queries with {SMALL} rows, {large} with {LARGE}"
    assert small <= route.bound, f"{route.name}: {small} queries, more than its bound of {route.bound}"
