"""Browser journeys against the real service stack (see conftest.py): what a researcher and an operator
do, click by click, with a screenshot after every step in artifacts/journeys/."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from tests.journeys.conftest import JOB_TIMEOUT_MS, PASSWORD, STRIPE_WEBHOOK_SECRET, log_in, make_user

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.journey]


def _confirmation_link(stack, email: str) -> str:
    """The link in the confirmation email, as the console backend printed it in daphne's log."""
    log = stack.log("web").replace("=\n", "")  # undo quoted-printable soft line breaks, if any
    position = log.rfind(email)
    links = re.findall(r"https?://[^\s\"'<>]+/accounts/confirm-email/[^\s\"'<>]+", log[max(position, 0) :])
    assert links, f"no confirmation email for {email} in the server output\n{stack.logs()}"
    return links[0]


def _tab(page, name: str):
    """A tab of the focus-group page (the same words appear in links elsewhere on it)."""
    return page.locator("ul.nav-tabs").get_by_role("link", name=name)


def _guide_saved(page):
    """Wait for an edit of the guide to come back: the editor is swapped whole, so the next step must
    find the new one, not the old one about to be replaced."""
    return page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/guide/"))


def test_researcher_journey(page, stack, screenshots):
    from billing.models import CreditTransaction
    from cohorta.accounts.models import User
    from personas.models import Persona

    shot = screenshots(1, 19)
    email = "rita.researcher@example.com"

    # 1. Sign up, confirm the email from the link that was "sent", land on the dashboard.
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label(re.compile(r"Password \(again\)")).fill(PASSWORD)
    shot("signup")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text(re.compile("verify your email|confirmation", re.I)).first).to_be_visible()
    shot("verification-sent")
    page.goto(_confirmation_link(stack, email))
    page.get_by_role("button", name=re.compile("Confirm", re.I)).click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name=re.compile("Welcome"))).to_be_visible()
    user = User.objects.get(email=email)

    # 2. The trial credits are on the dashboard and on the billing page.
    credits_card = page.get_by_role("link", name=re.compile(r"Credits\s*60"))
    expect(credits_card).to_be_visible()
    shot("dashboard-trial-credits")
    credits_card.click()
    expect(page.locator("#credit-balance")).to_have_text("60")
    expect(page.locator("#credit-ledger")).to_contain_text("Free trial credits")
    shot("billing-trial")

    # 3. Generate three personas and watch them arrive.
    stack.llm.tokens_per_second = 150  # each profile takes a moment: the progress is watchable
    page.goto("/personas/generate/")
    page.get_by_label("Who do you want to hear from?").fill(
        "Urban parents in their thirties who buy oat milk every week and care about price and sustainability."
    )
    page.get_by_label("How many personas").fill("3")
    shot("generate-brief")
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_role("heading", name="3 personas for your brief")).to_be_visible()
    status = page.locator("#brief-status")
    expect(status).to_contain_text("of 3 ready")
    shot("personas-arriving")
    expect(status).to_have_text("3 of 3 ready", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_text("Finished", exact=True)).to_be_visible()
    expect(page.locator(".persona-arrival")).to_have_count(3)
    shot("personas-ready")
    names = [name.strip() for name in page.locator(".persona-arrival .fw-semibold").all_inner_texts()]
    assert len(set(names)) == 3, names

    # 4. A focus group with the three of them.
    page.goto("/focus-groups/new/")
    page.get_by_label("Title").fill("Oat milk subscription: first reactions")
    page.get_by_label("Research objective").fill(
        "Understand why young families would or would not pay monthly for an oat-milk subscription."
    )
    page.get_by_label("Product or concept").fill("Oatly-style oat milk delivered weekly, £12 a month, cancel any time.")
    for box in page.get_by_role("list", name="Your personas").get_by_role("checkbox").all():
        box.check()
    expect(page.locator("#chosen-count")).to_contain_text("3 chosen")
    shot("focus-group-form")
    page.get_by_role("button", name="Create focus group").click()
    expect(page.get_by_role("heading", name=re.compile("Oat milk subscription"))).to_be_visible()
    expect(page.locator("#participants .participant")).to_have_count(3)
    expect(page.locator("#connection-label")).to_have_text("Live")

    # 5. A moderated question: every participant answers, token by token.
    stack.llm.tokens_per_second = 25  # about two seconds per answer: the stream is there to see
    page.get_by_label("Your message").fill("What goes through your mind when you hear 'oat milk by subscription'?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#transcript .msg-researcher")).to_have_count(1)
    streaming = page.locator("#transcript .msg-streaming .msg-body").filter(has_text=re.compile(r"\w{3,}"))
    expect(streaming.first).to_be_visible()
    shot("answers-streaming")
    expect(page.locator("#transcript .msg-persona[data-seq]")).to_have_count(3, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#transcript .msg-streaming")).to_have_count(0)
    shot("answers-complete")

    # 6. The discussion guide, written by the AI; trimmed to two short sections for a quick run.
    stack.llm.tokens_per_second = 0
    _tab(page, "Guide").click()
    page.get_by_role("button", name="Generate the guide").click()
    expect(page.locator("#guide-editor")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    while page.locator(".guide-section").count() > 2:
        count = page.locator(".guide-section").count()
        with _guide_saved(page):
            page.get_by_role("button", name=f"Remove section {count}").click()
        expect(page.locator(".guide-section")).to_have_count(count - 1)
    for index in range(2):
        section = page.locator(f"#section-{index}")
        section.get_by_text("Edit title, goal and turn budget").click()
        section.get_by_label("Turn budget").fill("2")
        with _guide_saved(page):
            section.get_by_role("button", name="Save section").click()
        expect(section.get_by_title(re.compile("^Turn budget"))).to_have_text(re.compile(r"^\s*2 turns\s*$"))
    expect(page.locator("#guide-editor")).to_contain_text("4 turns in total")
    shot("guide")

    # 7. Autonomous mode: the AI moderator runs the guide, live, until the turn budget ends it.
    stack.llm.tokens_per_second = 100
    _tab(page, "Discussion").click()
    expect(page.locator("#connection-label")).to_have_text("Live")
    page.get_by_role("button", name="Start autonomous mode").click()
    expect(page.locator("#autopilot-status")).to_have_text("Running")
    expect(page.locator("#autopilot-next")).to_contain_text("Next:")
    expect(page.locator("#autopilot-turns")).to_contain_text("of 4 turns")
    shot("autonomous-running")
    expect(page.locator("#autopilot-turns")).to_have_text(re.compile(r"^[123] of 4 turns$"), timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#autopilot-balance")).to_contain_text("1")
    shot("autonomous-progress")
    # The run ends the session; the page reloads itself into the final transcript.
    expect(page.locator("#session-status")).to_have_text("Ended", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#autopilot-status")).to_have_text("Ended")
    # The budget ends it, or the moderator wraps up once the guide's last question has had its turn.
    expect(page.locator("#autopilot-turns")).to_have_text(re.compile(r"^[34] of 4 turns$"))
    expect(page.locator("#autopilot-ended")).to_contain_text(
        re.compile(r"Ended: (The discussion guide is done|The turn budget)")
    )
    expect(page.get_by_text("This session has ended")).to_be_visible()
    shot("autonomous-ended")

    # 8. The analysis started by itself: themes and the report appear on the Report tab.
    stack.llm.tokens_per_second = 0
    _tab(page, "Report").click()
    expect(page.locator("#report-summary")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Executive summary")).to_be_visible()
    expect(page.locator(".report-theme").first).to_be_visible()
    expect(page.locator(".report-stances")).to_be_visible()
    shot("report")

    # 9. Downloads: the transcript CSV and the report DOCX, as the browser saves them.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Transcript (CSV)").click()
    transcript = download_info.value
    assert transcript.suggested_filename.endswith("-transcript.csv")
    rows = list(csv.reader(io.StringIO(transcript.path().read_text(encoding="utf-8"))))
    assert rows[0] == ["sequence", "created_at", "role", "speaker", "persona_id", "status", "content"]
    roles = [row[2] for row in rows[1:]]
    # Three moderated answers, then an answer per autonomous turn (but a closing wrap-up's).
    assert roles.count("researcher") == 1 and roles.count("persona") >= 3 + 2, roles

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Report (Word)").click()
    report = download_info.value
    assert report.suggested_filename.endswith("-report.docx")
    import docx

    document = docx.Document(report.path())
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert "Participant stances" in headings, headings
    headers = [[cell.text for cell in table.rows[0].cells] for table in document.tables]
    assert ["Participant", "Stance", "Summary"] in headers, headers
    stance_table = document.tables[headers.index(["Participant", "Stance", "Summary"])]
    participants = set(Persona.objects.filter(owner=user).values_list("name", flat=True))
    stance_rows = [[cell.text for cell in row.cells] for row in stance_table.rows[1:]]
    assert stance_rows and all(row[0] in participants and row[1] for row in stance_rows), stance_rows

    # 10. The dashboard counts what was made. Credits: 60 trial − 3 × 2 for the personas − 40 for exactly
    # one autonomous run.
    page.goto("/")
    expect(page.locator("#persona-count")).to_have_text("3")
    expect(page.locator("#focus-group-count")).to_have_text("1")
    expect(page.get_by_role("link", name=re.compile(r"Credits\s*14\b"))).to_be_visible()
    shot("dashboard-after")
    page.goto("/billing/")
    expect(page.locator("#credit-balance")).to_have_text("14")
    expect(page.locator("#credit-ledger")).to_contain_text("Autonomous run")
    shot("billing-after")
    spends = CreditTransaction.objects.filter(user=user, kind="spend")
    run_charges = [t for t in spends if t.delta == -40]
    assert len(run_charges) == 1, list(spends.values("delta", "description", "idempotency_key"))
    assert run_charges[0].idempotency_key.startswith("autorun:")
    assert sum(t.delta for t in spends if t.delta != -40) == -6
    user.refresh_from_db()
    assert user.credit_balance == 14


def test_without_its_socket_the_session_page_keeps_up_by_polling(page, stack):
    """Websockets blocked on the way (a proxy that drops them): the page falls back to asking every few seconds,
    and the answers and the session's status still arrive."""
    from focusgroups.models import FocusGroup, Participant
    from personas.services import persona_create

    email = "polly.polling@example.com"
    user = make_user(email)
    session = FocusGroup.objects.create(owner=user, title="Polling check", objective="Does the fallback keep up?")
    for position, name in enumerate(["Priya Shah", "Tom Reed"]):
        persona = persona_create(owner=user, data={"name": name, "age": 40 + position, "occupation": "Nurse"})
        Participant.objects.create(focus_group=session, persona=persona, position=position)
    # No socket class on the page: discussion.js polls, as when the socket cannot connect.
    page.add_init_script("Object.defineProperty(window, 'CohortaSocket', {get() { return undefined; }, set(v) {}});")
    log_in(page, email)
    page.goto(f"/focus-groups/{session.pk}/")
    expect(page.locator("#session-status")).to_have_text("Draft")
    expect(page.locator("#connection-label")).to_contain_text("updates every few seconds")
    page.get_by_label("Your message").fill("What would make you try a meal kit?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#transcript .msg-persona[data-seq]")).to_have_count(2, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#session-status")).to_have_text("Live")  # was left at "Draft" until a reload
    expect(page.locator("#transcript-empty")).to_be_hidden()  # "Ask your first question" stayed up under the answers


def test_billing_journey(page, stack, screenshots):
    """Buy a credit pack: Checkout (the fake's hosted page), back to Billing with a pending banner, then
    Stripe's signed webhook arrives and the banner and balance update in place, without a reload."""
    from billing.models import CreditPack, CreditTransaction
    from billing.services import credits_grant_trial
    from tests.fakes.stripe_server import signed_event

    shot = screenshots(20, 10)
    user = make_user("bea.buyer@example.com", name="Bea Buyer")
    credits_grant_trial(user=user)
    # The packs an admin sets up (made here: a transactional test elsewhere may have flushed the seeded ones).
    for name, credits, price, order in [("Starter", 50, "49.00", 10), ("Pro", 220, "199.00", 20)]:
        CreditPack.objects.get_or_create(
            name=name, defaults={"credits": credits, "price": price, "currency": "usd", "sort_order": order}
        )

    # The release step's `manage.py stripe_setup`: dj-stripe's account, API key and webhook endpoint rows.
    endpoint_uuid = (
        stack.manage(
            "from django.core.management import call_command; call_command('stripe_setup');"
            "from billing.stripe_setup import configured_webhook_endpoint;"
            "print(configured_webhook_endpoint().djstripe_uuid)"
        )
        .strip()
        .splitlines()[-1]
    )

    log_in(page, user.email)
    page.goto("/billing/")
    expect(page.locator("#credit-balance")).to_have_text("60")
    buy = page.get_by_role("button", name="Buy Starter")
    expect(buy).to_be_enabled()
    shot("billing")

    buy.click()
    page.wait_for_url(f"{stack.stripe.base_url}/pay/**")
    expect(page.get_by_role("heading", name=re.compile(r"Pay 49\.00 USD"))).to_be_visible()
    shot("stripe-checkout")
    session_id = page.url.rsplit("/", 1)[1]

    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(re.compile(r"/billing/\?checkout=success&session_id=" + re.escape(session_id)))
    banner = page.locator("#checkout-status")
    expect(banner).to_contain_text("waiting for confirmation")
    expect(page.locator("#credit-balance")).to_have_text("60")  # the return alone grants nothing
    shot("checkout-pending")

    # Stripe's webhook to dj-stripe's endpoint, signed with its secret; the page is left alone while it lands.
    page.evaluate("window.__sameDocument = true")
    body, signature = signed_event(stack.stripe.event("checkout.session.completed", session_id), STRIPE_WEBHOOK_SECRET)
    for url in [f"/stripe/webhook/{endpoint_uuid}/", "/billing/stripe/webhook/"]:
        # Stripe retries (here at the old URL too): the second delivery must change nothing.
        response = page.request.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
        )
        assert response.status == 200, response.text()
    expect(banner).to_have_attribute("data-status", "paid")
    expect(banner).to_contain_text("50 credits added")
    expect(page.locator("#credit-balance")).to_have_text("110")
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded instead of updating in place"
    shot("checkout-paid")

    purchases = CreditTransaction.objects.filter(user=user, kind="purchase")
    assert [(t.delta, t.idempotency_key) for t in purchases] == [(50, f"checkout:{session_id}")]
    user.refresh_from_db()
    assert user.credit_balance == 110


def test_admin_analytics_journey(page, stack, screenshots):
    """An operator logs in to the admin and opens every analytics page the admin index links to."""
    shot = screenshots(30, 10)
    staff = make_user("olga.operator@example.com", name="Olga Operator", is_staff=True, is_superuser=True)

    log_in(page, staff.email, "/admin/login/?next=/admin/")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#site-name")).to_contain_text("Cohorta back office")
    shot("admin-index")

    hrefs = page.locator("a[href*='/admin/analytics']").evaluate_all("links => links.map(a => a.pathname)")
    for href in list(dict.fromkeys(hrefs))[:8]:
        response = page.goto(href)
        assert response is not None and response.status == 200, (href, response and response.status)
        expect(page.locator("#content")).to_be_visible()
        slug = href.rstrip("/").rsplit("/", 1)[-1]
        shot("analytics-" + ("overview" if slug == "analytics" else slug))
