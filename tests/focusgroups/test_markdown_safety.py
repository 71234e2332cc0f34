"""Markdown downloads (transcript, report, discussion guide) rendered the way a viewer would (CommonMark with
raw HTML allowed): text from people and models stays text in them."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone
from markdown_it import MarkdownIt

from cohorta.jobs.models import Job, JobState
from focusgroups.guide import services as guides
from focusgroups.markdown import md_cell, md_inline, md_text
from focusgroups.models import FocusGroup, Message, MessageStatus
from focusgroups.report import analysis
from tests.focusgroups.factories import FocusGroupFactory, add_message, add_participants
from tests.personas.factories import PersonaFactory

pytestmark = pytest.mark.django_db

# What a hostile title, name, message or model answer might hold: HTML, a script, an autolink, a link
# and an image to javascript:, a reference-style link, a heading and a rule at the start of a line.
HOSTILE = (
    "<script>alert(1)</script> <img src=x onerror=alert(2)> <javascript:alert(3)> "
    "[click](javascript:alert(4)) ![pic](javascript:alert(5)) [ref][r] \\<b>bold\\</b>\n"
    "[r]: javascript:alert(6)\n# Heading\n---\n<a href='javascript:alert(7)'>a</a>"
)

# Short enough for a persona's name or a session's title.
HOSTILE_NAME = "<script>alert(1)</script>[click](javascript:alert(4))"


def render(text: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).render(text)


def assert_inert(text: str, *, appearances: int) -> None:
    """No HTML, link or image comes out of ``text`` rendered, and the hostile text is still there to read,
    ``appearances`` times."""
    html = render(text)
    for tag in ("<script", "<img", "<a ", "<b>", "<h1>Heading", "javascript:alert(7)'>"):
        assert tag not in html, (tag, html)
    assert "<script" not in text and "<img" not in text and "<a " not in text
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == appearances, html
    assert html.count("[click](javascript:alert(4))") == appearances, html


def test_escaping_keeps_the_words_and_drops_the_markup():
    assert md_inline("  a <b>  [x](y)\\z\n next ") == "a &lt;b&gt; \\[x\\](y)\\\\z next"
    assert md_cell("a | b") == "a \\| b"
    assert md_text("# Title\n  ---\nfine > ok\r\n___") == "\\# Title\n\\---\nfine &gt; ok\n\\___"
    assert render(md_inline("[x](javascript:alert(1))")) == "<p>[x](javascript:alert(1))</p>\n"


def _get(client, fg, kind):
    return client.get(reverse("focusgroups:export", args=[fg.pk, kind]))


def test_markdown_downloads_keep_hostile_text_as_text(client, owner):
    """A title, names, messages and everything the model wrote that hold HTML, scripts, links and images
    come out of the Markdown files as text to read: a viewer runs and follows nothing."""
    persona = PersonaFactory(owner=owner, name=f"Eve {HOSTILE_NAME}", occupation=HOSTILE_NAME)
    other = PersonaFactory(owner=owner, name="Bob")
    fg = FocusGroupFactory(owner=owner, title=f"Oat {HOSTILE_NAME}", objective=HOSTILE, concept=HOSTILE)
    add_participants(fg, [persona, other])
    add_message(fg, content=HOSTILE)
    said = add_message(fg, persona=persona, content=f"I said {HOSTILE}")
    failed = add_message(fg, persona=other, content="")
    Message.objects.filter(pk=failed.pk).update(status=MessageStatus.FAILED, error=HOSTILE)
    report = analysis.report_finalise(
        {
            "executive_summary": HOSTILE,
            "findings": [{"section": HOSTILE, "summary": HOSTILE, "key_points": [HOSTILE]}],
            "stances": [{"persona_id": persona.pk, "stance": "positive", "summary": HOSTILE}],
            "recommendations": [HOSTILE],
            "limitations": [HOSTILE],
        },
        sections=[HOSTILE],
        participants=analysis.session_participants(focus_group=fg),
    )
    theme = {"title": HOSTILE, "description": HOSTILE, "sentiment": "mixed", "personas": [persona.name]}
    theme["quotes"] = [{"sequence": said.sequence, "text": HOSTILE, "speaker": persona.name, "persona_id": persona.pk}]
    Job.objects.create(
        owner=owner,
        kind=analysis.JOB_KIND,
        state=JobState.DONE,
        target_type=ContentType.objects.get_for_model(FocusGroup),
        target_id=str(fg.pk),
        result={"version": 1, "transcript": {}, "themes": [theme], "report": report},
        finished_at=timezone.now(),
    )
    client.force_login(owner)
    transcript = _get(client, fg, "transcript-md").content.decode()
    # Title, objective, concept, a name and an occupation, the researcher's message, the name over the answer,
    # the answer, the error.
    assert_inert(transcript, appearances=9)
    assert "**#2 · Eve &lt;script&gt;" in transcript
    assert "\n\\# Heading\n\\---\n" in transcript  # a line of a message cannot start a heading or a rule
    text = _get(client, fg, "report-md").content.decode()
    # Title, objective, concept, the summary; the theme's title, description, voiced by, quote and speaker;
    # the finding's section, summary and key point; the stance's name and summary; a recommendation, a limitation;
    # in the "At a glance" tables, the theme's title twice and the name in the share of voice.
    assert_inert(text, appearances=19)
    assert "\\[click\\](javascript:alert(4))" in text


def test_guide_markdown_keeps_hostile_text_as_text(owner):
    focus_group = FocusGroup.objects.create(
        owner=owner, title=f"Kits {HOSTILE_NAME}", objective=HOSTILE_NAME, concept=HOSTILE_NAME
    )
    question = {"text": HOSTILE_NAME, "probes": [HOSTILE_NAME]}
    data = {
        "title": HOSTILE_NAME,
        "sections": [
            {"title": HOSTILE_NAME, "goal": HOSTILE_NAME, "turn_budget": 4, "questions": [question]},
            {"title": "Second", "goal": "More.", "turn_budget": 4, "questions": [{"text": "Why?", "probes": []}]},
        ],
    }
    text = guides.guide_to_markdown(guides.guide_save(focus_group=focus_group, data=data))
    # The guide's title, the session's title, objective and concept, a section's title and goal, a question, a probe.
    assert_inert(text, appearances=8)
