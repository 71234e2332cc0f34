"""What a new researcher trips over first, in a real browser on the service stack: participants whose
names have titles, accents, hyphens and very long words (the panel stays readable, at desktop and phone
width, and every one of them can be @mentioned from the menu), an answer reloaded in the middle of its
stream (it shows from its first word, without repeats), and "Modify with AI", whose new version
appears on the open profile page when the job ends."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.journeys.conftest import JOB_TIMEOUT_MS, log_in, make_user

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.journey]

PEOPLE = [
    ("Dr. Sarah Jones", 51, "GP"),
    ("Sarah Okafor", 29, "Barista"),
    ("Bartholomew-Fitzwilliam Featherstonehaugh-Smythe", 67, "Retired diplomat"),
    ("Zoë O'Brien", 37, "Teacher"),
]


def _session(user):
    from focusgroups.models import FocusGroup, Participant
    from personas.services import persona_create

    session = FocusGroup.objects.create(
        owner=user,
        title="Oat milk by subscription",
        objective="Would people pay monthly for oat milk delivered weekly?",
        concept="Oat milk, four litres a week, £12 a month.",
    )
    for position, (name, age, occupation) in enumerate(PEOPLE):
        persona = persona_create(owner=user, data={"name": name, "age": age, "occupation": occupation})
        Participant.objects.create(focus_group=session, persona=persona, position=position)
    return session


def _name_width_share(page, name: str) -> float:
    """How much of its row a participant's name gets (one character per line is a few percent)."""
    row = page.locator("#participants .participant").filter(has_text=name)
    name_box = row.locator(".participant-name").bounding_box()
    row_box = row.bounding_box()
    return name_box["width"] / row_box["width"]


def _bubble_texts(page) -> dict[str, str]:
    return dict(
        page.evaluate(
            """() => Array.from(document.querySelectorAll('#transcript .msg-streaming'))
                 .map(b => [b.dataset.answerId, b.querySelector('.msg-body').textContent])"""
        )
    )


def test_names_mentions_and_a_reload_mid_answer(page, stack, screenshots):
    from focusgroups.models import Message, MessageRole

    shot = screenshots(60, 8)
    user = make_user("nina.newcomer@example.com", name="Nina Newcomer")
    session = _session(user)
    log_in(page, user.email, f"/accounts/login/?next=/focus-groups/{session.pk}/")
    expect(page.locator("#connection-label")).to_have_text("Live")

    # 1. A very long first word does not squeeze its name into a column of single letters.
    long_name = PEOPLE[2][0]
    assert _name_width_share(page, long_name) > 0.35
    shot("participants-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    assert _name_width_share(page, long_name) > 0.35
    page.locator("#participants").scroll_into_view_if_needed()
    shot("participants-phone")
    page.set_viewport_size({"width": 1366, "height": 768})

    # 2. "@Dr." finds Dr. Sarah Jones; the menu inserts a handle the server reads back to her alone.
    # About ten seconds per answer (~45 tokens): the reload below lands mid-answer even on a loaded machine, where a
    # page load and a socket connect can take seconds (at 20 tokens/s the answer sometimes ended first).
    stack.llm.tokens_per_second = 4
    box = page.get_by_label("Your message")
    box.click()
    box.press_sequentially("@Dr.")
    menu = page.locator("#mention-menu")
    expect(menu).to_contain_text("Dr. Sarah Jones")
    shot("mention-menu")
    box.press("Enter")
    expect(box).to_have_value("@SarahJones ")
    box.press_sequentially("would you pay monthly for this?")
    box.press("Enter")
    expect(page.locator("#transcript .msg-researcher")).to_have_count(1)
    expect(page.locator("#composer-error")).to_have_text("")
    bubble = page.locator("#transcript .msg-streaming .msg-body")
    expect(bubble).to_have_count(1)  # only she answers
    expect(bubble).to_have_text(re.compile(r"(\w+\W+){6}"))

    # 3. A reload in the middle of her answer shows it from its first word, then the rest, nothing twice.
    before = bubble.inner_text()
    page.reload()
    expect(page.locator("#connection-label")).to_have_text("Live")
    expect(bubble).to_have_text(re.compile("^" + re.escape(before[:25])))
    shot("reloaded-mid-answer")
    seen: list[str] = []
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        texts = list(_bubble_texts(page).values())
        if not texts:
            break
        seen += texts
        time.sleep(0.05)
    expect(page.locator("#transcript .msg-persona[data-seq]")).to_have_count(1)
    answer = Message.objects.get(focus_group=session, role=MessageRole.PERSONA)
    assert answer.speaker_name == "Dr. Sarah Jones"
    assert seen and all(answer.content.startswith(text.strip()) for text in seen), (seen[-1], answer.content)
    shot("answer-saved")

    # 4. Names with accents, hyphens and apostrophes are mentioned from the menu too.
    stack.llm.tokens_per_second = 0
    for typed, name in (("@zoe", "Zoë O'Brien"), ("@Bartholomew", long_name)):
        box.press_sequentially(typed)
        expect(menu).to_contain_text(name)
        box.press("Enter")
        box.press_sequentially("what do you think? ")
    box.press("Enter")
    expect(page.locator("#composer-error")).to_have_text("")
    expect(page.locator("#transcript .msg-persona[data-seq]")).to_have_count(3, timeout=JOB_TIMEOUT_MS)
    speakers = set(
        Message.objects.filter(focus_group=session, role=MessageRole.PERSONA).values_list("speaker_name", flat=True)
    )
    assert speakers == {"Dr. Sarah Jones", "Zoë O'Brien", long_name}
    shot("mentions-answered")


def test_an_ai_change_appears_on_the_open_profile(page, stack, screenshots):
    from billing.services import credits_grant
    from personas.services import persona_create

    shot = screenshots(68, 4)
    user = make_user("mo.modifier@example.com", name="Mo Modifier")
    credits_grant(user=user, amount=20, idempotency_key="journey:modify")
    persona = persona_create(owner=user, data={"name": "Priya Shah", "age": 34, "occupation": "Nurse"})
    log_in(page, user.email, f"/accounts/login/?next=/personas/{persona.pk}/")
    expect(page.locator("#persona-profile")).to_have_attribute("data-version", "1")

    stack.llm.tokens_per_second = 400  # a moment to see the change being written
    page.get_by_label("Instruction").fill("make her much more price-sensitive")
    page.get_by_role("button", name="Modify").click()
    expect(page.locator("#version-pending")).to_contain_text("make her much more price-sensitive")
    page.evaluate("window.stillTheSamePage = true")
    shot("modify-running")

    # No reload: the profile column and the version history update themselves when the job ends.
    expect(page.locator("#persona-profile")).to_have_attribute("data-version", "2", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#version-pending")).to_have_count(0)
    expect(page.locator("#version-2")).to_contain_text("AI: make her much more price-sensitive")
    expect(page.locator("#provenance")).to_contain_text("Version 2")
    assert page.evaluate("window.stillTheSamePage") is True
    shot("modify-done")
