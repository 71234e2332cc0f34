"""The autonomous session, as a researcher tries it in a real browser: a 30-turn run on the service stack,
two interjections, stop and resume, the worker killed (-9) mid-turn and the run resumed, then the themes
(every quote opens its message), the DOCX report and the CSV transcript, and the same guide re-run on the
other model alias, side by side. Credits: one charge per run; the usage events add up to what the pages
show."""

from __future__ import annotations

import csv
import io
import re
import time
from decimal import ROUND_HALF_UP, Decimal

import pytest
from playwright.sync_api import expect

from tests.integration.helpers import wait_until
from tests.journeys.conftest import JOB_TIMEOUT_MS, log_in, make_user

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.journey]

# Three sections of ten turns: the run's budget is 30 turns.
GUIDE = {
    "title": "Meal kits for busy parents",
    "sections": [
        {
            "title": "Weeknight dinners today",
            "goal": "How they plan and cook now",
            "turn_budget": 10,
            "questions": [
                {"text": "How do you decide what to cook on a weeknight?", "probes": ["What gets in the way?"]},
                {"text": "When did you last give up and order takeaway?", "probes": []},
            ],
        },
        {
            "title": "First reactions to FreshBox",
            "goal": "What appeals and what worries",
            "turn_budget": 10,
            "questions": [
                {"text": "What is your first reaction to a £12 box of three dinners?", "probes": ["Why?"]},
                {"text": "What would stop you trying it?", "probes": []},
            ],
        },
        {
            "title": "Would they pay",
            "goal": "Willingness to pay and cancel",
            "turn_budget": 10,
            "questions": [
                {"text": "What would a fair weekly price be for your family?", "probes": []},
                {"text": "What would make you cancel after a month?", "probes": []},
            ],
        },
    ],
}
PEOPLE = [
    ("Priya Shah", 34, "Nurse", "Leeds"),
    ("Tom Reed", 58, "Bus driver", "Bristol"),
    ("Alex Kim", 27, "Designer", "London"),
    ("Maria Lopez", 45, "Teacher", "Manchester"),
]
INTERJECTIONS = ["Please ask them about price next.", "Could someone who has not spoken much say more?"]


def _session(user):
    from focusgroups.models import DiscussionGuide, FocusGroup, Participant
    from personas.services import persona_create

    session = FocusGroup.objects.create(
        owner=user,
        title="FreshBox meal kits",
        objective="Understand whether busy parents would pay for a weekly meal kit, and why not.",
        concept="FreshBox: three dinners a week, £12 a box, cancel any time.",
    )
    for position, (name, age, occupation, city) in enumerate(PEOPLE):
        persona = persona_create(
            owner=user, data={"name": name, "age": age, "occupation": occupation, "location": city}
        )
        Participant.objects.create(focus_group=session, persona=persona, position=position)
    DiscussionGuide.objects.create(focus_group=session, data=GUIDE)
    return session


def _run(session):
    from focusgroups.models import AutonomousRun

    return AutonomousRun.objects.get(focus_group=session)


def _turns_done(session) -> int:
    return _run(session).turns_done


def _wait(predicate, what: str, timeout: float = 60) -> None:
    wait_until(predicate, timeout, what)


def _settled(model, quiet: float = 2.0, timeout: float = 60) -> None:
    """Wait until no new row of ``model`` has appeared for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        newest = model.objects.order_by("-id").values_list("id", flat=True).first()
        if newest != last:
            last, since = newest, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)
    raise AssertionError(f"{model.__name__} rows kept coming")


def _decision_prompts(stack) -> list[str]:
    return [
        r.body["messages"][0]["content"]
        for r in stack.llm.requests
        if ((r.body.get("response_format") or {}).get("json_schema") or {}).get("name") == "moderator_decision"
    ]


def test_autonomous_session_journey(page, stack, screenshots):
    from billing.models import CreditTransaction
    from billing.services import credits_grant
    from focusgroups.models import Message, MessageRole, RunStatus
    from usage.models import UsageEvent

    shot = screenshots(40, 20)
    user = make_user("aisha.autonomous@example.com")
    credits_grant(user=user, amount=100, idempotency_key="journey:autonomous")
    session = _session(user)
    # About a second per turn: slow enough to watch, to stop and to kill mid-turn; 30 turns in under a minute.
    stack.llm.ttft, stack.llm.tokens_per_second = 0.05, 120

    log_in(page, user.email)
    page.goto(f"/focus-groups/{session.pk}/")
    expect(page.locator("#connection-label")).to_have_text("Live")
    expect(page.locator("#participants .participant")).to_have_count(4)
    shot("autonomous-before-start")

    # 1. Start: one run, one charge, the moderator's choice and progress on screen.
    page.get_by_role("button", name="Start autonomous mode").click()
    expect(page.locator("#autopilot-status")).to_have_text("Running")
    expect(page.locator("#autopilot-turns")).to_contain_text("of 30 turns")
    expect(page.locator("#autopilot-next")).to_contain_text("Next:")
    expect(page.locator("#autopilot-section")).to_contain_text("Section 1 of 3")
    expect(page.locator("#transcript .msg-persona[data-seq]").first).to_be_visible(timeout=JOB_TIMEOUT_MS)
    shot("autonomous-streaming")

    # 2. Two interjections while it runs: each shows at once and reaches the next decision.
    for text in INTERJECTIONS:
        asked = len(_decision_prompts(stack))
        page.get_by_label("Your message").fill(text)
        page.get_by_label("Your message").press("Enter")
        expect(page.locator("#transcript .msg-researcher").filter(has_text=text)).to_have_count(1)
        _wait(
            lambda text=text, asked=asked: any(
                f'THE RESEARCHER JUST SAID: "{text}"' in prompt for prompt in _decision_prompts(stack)[asked:]
            ),
            f"a decision that takes {text!r} into account",
        )
    shot("autonomous-interjected")

    # 3. Stop: the turn in flight finishes, then the run pauses. Resume goes on from there.
    page.get_by_role("button", name="Stop after this turn").click()
    expect(page.locator("#autopilot-status")).to_have_text("Paused", timeout=JOB_TIMEOUT_MS)
    paused_at = _turns_done(session)
    time.sleep(2.5)  # nothing moves while paused
    assert _turns_done(session) == paused_at and _run(session).status == RunStatus.PAUSED
    expect(page.locator("#autopilot-turns")).to_have_text(f"{paused_at} of 30 turns")
    shot("autonomous-paused")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#autopilot-status")).to_have_text("Running")
    _wait(lambda: _turns_done(session) > paused_at, "a turn after resuming")

    # 4. The worker is killed (-9) while an answer streams. The reaper (run here as beat would, two minutes
    # on) marks the run interrupted; a new worker starts; the researcher resumes from the last saved turn.
    # The next turn streams slowly (about 10 s a call), so that on a loaded machine the kill still lands
    # inside it: at 120 tokens/s a turn could end between seeing its bubble and the kill.
    slow_from = _turns_done(session) + 1
    stack.llm.tokens_per_second = 4
    _wait(lambda: _turns_done(session) >= slow_from, "the turn already under way at full speed to end")
    expect(page.locator("#transcript .msg-streaming").first).to_be_visible(timeout=JOB_TIMEOUT_MS)
    stack.kill_worker()
    stack.llm.tokens_per_second = 120
    killed_at = _turns_done(session)
    assert _run(session).claimed_turn == killed_at, "the kill was meant to land mid-turn"
    before_kill = list(Message.objects.filter(focus_group=session).values_list("sequence", flat=True))
    stack.manage(
        "from datetime import timedelta; from django.utils import timezone; "
        "from focusgroups.autonomous.runs import runs_reap; "
        "print(runs_reap(now=timezone.now() + timedelta(seconds=120)))"
    )
    expect(page.locator("#autopilot-status")).to_have_text("Interrupted")
    shot("autonomous-interrupted")
    stack.start_worker()
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#autopilot-status")).to_have_text("Running")
    _wait(lambda: _turns_done(session) > killed_at, "a turn from the new worker", timeout=90)
    after = list(Message.objects.filter(focus_group=session).order_by("sequence").values_list("sequence", flat=True))
    assert after[: len(before_kill)] == sorted(before_kill)  # nothing of the lost turn was saved, nothing lost
    shot("autonomous-resumed")

    # 5. It runs to its end: the budget, or the moderator's wrap-up on the guide's last question.
    expect(page.locator("#session-status")).to_have_text("Ended", timeout=JOB_TIMEOUT_MS * 2)
    expect(page.locator("#autopilot-ended")).to_contain_text(
        re.compile(r"Ended: (The discussion guide is done|The turn budget was reached)")
    )
    run = _run(session)
    assert run.status == RunStatus.ENDED and 15 <= run.turns_done <= 30, (run.turns_done, run.end_reason)
    expect(page.locator("#autopilot-turns")).to_have_text(f"{run.turns_done} of 30 turns")
    sequences = list(
        Message.objects.filter(focus_group=session).order_by("sequence").values_list("sequence", flat=True)
    )
    assert sequences == list(range(1, len(sequences) + 1))  # contiguous, no duplicates
    counts = sorted(run.speaking_counts.values())
    assert counts[-1] - counts[0] <= 2, run.speaking_counts  # nobody dominated
    assert Message.objects.filter(focus_group=session, role=MessageRole.RESEARCHER).count() == 2
    shot("autonomous-ended")

    # 6. Themes and the report, started by the end of the session. Every quote opens its own message.
    page.locator("ul.nav-tabs").get_by_role("link", name="Report").click()
    expect(page.locator("#report-summary")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    quotes = page.locator(".report-quote a")
    expect(quotes.first).to_be_visible()
    existing = set(sequences)
    hrefs = quotes.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    linked = [int(re.search(r"#msg-(\d+)$", href).group(1)) for href in hrefs]
    assert linked and set(linked) <= existing, (linked, hrefs)
    assert all(Message.objects.get(focus_group=session, sequence=n).role == MessageRole.PERSONA for n in linked), (
        "a theme quotes a message that is not a persona's answer"
    )
    shot("autonomous-report")
    first = linked[0]
    quotes.first.click()
    expect(page).to_have_url(re.compile(rf"/focus-groups/{session.pk}/#msg-{first}$"))
    target = page.locator(f"#msg-{first}")
    expect(target).to_be_in_viewport()
    expect(target).to_have_class(re.compile(r"\bmsg-linked\b"))
    shot("autonomous-quote-opens-its-message")

    # 7. Downloads: the DOCX report and the CSV transcript hold this session.
    page.locator("ul.nav-tabs").get_by_role("link", name="Report").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Report (Word)").click()
    import docx

    document = docx.Document(download_info.value.path())
    text = "\n".join(p.text for p in document.paragraphs)
    assert "Executive summary" in text and "synthetic" in text.lower()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Transcript (CSV)").click()
    rows = list(csv.reader(io.StringIO(download_info.value.path().read_text(encoding="utf-8"))))
    assert [int(row[0]) for row in rows[1:]] == sequences
    assert [row[6] for row in rows[1:] if row[2] == "researcher"] == INTERJECTIONS

    # 8. The same guide and people on the other model alias, then both side by side.
    page.locator("ul.nav-tabs").get_by_role("link", name="Compare models").click()
    shot("compare-before")
    page.get_by_role("button", name=re.compile(r"Re-run \(40 credits\)")).click()
    expect(page.locator("#autopilot-status")).to_have_text("Running")
    expect(page.locator("#session-status")).to_have_text("Ended", timeout=JOB_TIMEOUT_MS * 2)
    copy_id = int(re.search(r"/focus-groups/(\d+)/", page.url).group(1))
    page.locator("ul.nav-tabs").get_by_role("link", name="Report").click()
    expect(page.locator("#report-summary")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    _settled(UsageEvent)  # the re-run's analysis jobs have made their last call
    page.goto(f"/focus-groups/{session.pk}/compare/")
    columns = page.locator(".compare-column")
    expect(columns).to_have_count(2)
    expect(columns.nth(1)).to_contain_text("mini")
    shot("compare-side-by-side")

    # 9. Money: one 40-credit charge per run, whatever the stop, the kill and the resumes; the cost on the
    # compare page is the sum of each session's usage events.
    spends = list(CreditTransaction.objects.filter(user=user, kind="spend").order_by("id"))
    assert [(t.delta, t.idempotency_key.split(":")[0]) for t in spends] == [(-40, "autorun"), (-40, "autorun")]
    user.refresh_from_db()
    assert user.credit_balance == 100 - 80
    for index, focus_group_id in enumerate([session.pk, copy_id]):
        events = UsageEvent.objects.filter(focus_group_id=focus_group_id)
        total = sum((e.cost_usd or Decimal(0) for e in events), Decimal(0))
        assert events.filter(feature="persona_response", status="ok").count() >= 20
        shown = total.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)  # as floatformat:4 rounds
        expect(columns.nth(index)).to_contain_text(f"Cost${shown}")
