"""Browser journeys: Playwright (sync API) drives Debian's Chromium against the real service stack.

The stack (one per test module): daphne + a Celery worker (threads pool, queues llm,default) on the
pytest-django Postgres test database and an isolated Redis database, with the project's fake OpenAI
and fake Stripe servers running in this process (tests change the LLM's pace on the live object).
Tests use ``transactional_db`` so the child processes see their rows.

Screenshots go to ``artifacts/journeys/<NN>-<step>.png`` (CI uploads the folder); on a failure the
page at that moment and the server/worker logs go there too, and the logs are attached to the report.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from llm.schema_faker import fake_instance
from tests.fakes.oidc_server import FakeOIDCServer
from tests.fakes.openai_server import FakeOpenAIServer, request_seed
from tests.fakes.stripe_server import FakeStripeServer
from tests.integration.helpers import (
    ROOT,
    Processes,
    base_env,
    celery_worker_args,
    free_port,
    service_database_url,
    wait_for_health,
)

ARTIFACTS = ROOT / "artifacts" / "journeys"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Generous: two CPU cores in CI run Postgres, Redis, daphne, a worker, Chromium and this process.
STEP_TIMEOUT_MS = 30_000
JOB_TIMEOUT_MS = 90_000
PASSWORD = "Journey-pass-2026!"
STRIPE_WEBHOOK_SECRET = "whsec_journeys_0123456789abcdef"
# A journey module that sets ``SSO_ON_STACK = True`` gets single sign-on through the fake OpenID Connect
# provider (its consent page stands in for the provider's), shown as "Continue with Fake IdP".
OIDC_CLIENT_ID = "cohorta-journeys"
OIDC_CLIENT_SECRET = "journeys-oidc-secret-0123"


def pytest_collection_modifyitems(config, items):
    """Without the browser, say so instead of failing in the middle of a journey. CI installs it
    (.ci/run), so there a missing browser fails the journeys instead of skipping them."""
    if Path(CHROMIUM).exists() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"browser journeys need Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if item.get_closest_marker("journey"):
            item.add_marker(skip)


def _journey_redis_url() -> str:
    """A Redis database of the journeys' own: the one after REDIS_URL's (plus the xdist worker number),
    flushed before and after, so queues, groups and rate limits never mix with a running Cohorta that
    uses REDIS_URL itself, or with another xdist worker's journeys."""
    url = os.environ["REDIS_URL"].rstrip("/")
    match = re.search(r"/(\d+)$", url)
    base = int(match.group(1)) if match else 0
    worker = int(re.sub(r"\D", "", os.environ.get("PYTEST_XDIST_WORKER", "")) or 0)
    index = (base + 1 + worker) % 16
    return re.sub(r"(/\d+)?$", f"/{index}", url, count=1)


class QuotingFakeLLM(FakeOpenAIServer):
    """The project's fake LLM, except that its key themes quote the transcript word for word, as a
    well-behaved model does. (The plain fake invents quote text, which the analysis rightly drops as
    not found in the transcript, so a journey would never see a theme.) Everything else, and all the
    token accounting, is the fake's own."""

    def _plan(self, body, kind, options):
        spec = (body.get("response_format") or {}).get("json_schema") or {}
        if kind is None and spec.get("name") == "key_themes":
            prompt = "\n".join(str(m.get("content") or "") for m in body["messages"] if isinstance(m, dict))
            said = dict(re.findall(r"^\[#(\d+)\] [^:\n]+: (.+)$", prompt, flags=re.M))
            value = fake_instance(spec.get("schema") or {}, seed=request_seed(body), hint=spec["name"])
            for theme in value.get("themes", []):
                for quote in theme.get("quotes", []):
                    words = said.get(str(quote.get("sequence")), "")
                    quote["text"] = re.split(r"(?<=[.!?])\s", words, maxsplit=1)[0] or quote["text"]
            return super()._plan(body, "invalid_output", {"content": json.dumps(value, ensure_ascii=False)})
        return super()._plan(body, kind, options)


@dataclass
class Stack:
    base_url: str
    processes: Processes
    llm: QuotingFakeLLM
    stripe: FakeStripeServer
    oidc: FakeOIDCServer
    log_dir: Path
    env: dict
    worker_args: list[str]

    def logs(self) -> str:
        return self.processes.logs()

    def kill_worker(self) -> None:
        """kill -9 the running Celery worker, as a crash or an OOM kill would."""
        for name, proc in self.processes.children:
            if name.startswith("worker") and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    def start_worker(self) -> None:
        """A new worker process, as a supervisor would start after a crash."""
        count = sum(1 for name, _ in self.processes.children if name.startswith("worker"))
        args = [*self.worker_args]
        args[args.index("-n") + 1] = f"journeys-{uuid.uuid4().hex[:8]}@%h"
        self.processes.start(f"worker-{count + 1}", args, self.env)

    def manage(self, code: str) -> str:
        """Run Python in a Cohorta process on this stack (its database, broker and channel layer), like
        a beat task or a shell on the server would; returns what it printed."""
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory, request) -> Iterator[Stack]:
    """daphne + a Celery worker against the test database, an isolated Redis db and the fake LLM."""
    log_dir = tmp_path_factory.mktemp("journey-stack")
    redis_url = _journey_redis_url()
    redis.Redis.from_url(redis_url).flushdb()
    # Unpaced by default; a journey slows it down (tokens_per_second) where it watches tokens arrive.
    llm = QuotingFakeLLM(api_key="test-key", ttft=0.05, tokens_per_second=0, completion_tokens=40).start()
    # Payments on, against the project's fake Stripe (its hosted /pay page stands in for Checkout).
    # No webhook_url yet: the billing journey sends the signed event itself, when it wants to.
    stripe = FakeStripeServer(api_key="sk_test_fakecohorta000000000000000000").start()
    oidc = FakeOIDCServer(client_id=OIDC_CLIENT_ID, client_secret=OIDC_CLIENT_SECRET, consent="page").start()
    env = base_env(
        DATABASE_URL=service_database_url(),
        REDIS_URL=redis_url,
        DB_CONN_MAX_AGE="0",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=llm.base_url,
        LLM_READ_TIMEOUT="20",
        LLM_DEADLINE_SECONDS="60",
        # What production does (DEBUG=1 would make it optional): the journey clicks the emailed link.
        ACCOUNT_EMAIL_VERIFICATION="mandatory",
        STRIPE_SECRET_KEY="sk_test_fakecohorta000000000000000000",
        STRIPE_PUBLISHABLE_KEY="pk_test_fake",
        STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET,
        STRIPE_API_BASE=stripe.base_url,
        MEDIA_ROOT=str(log_dir / "media"),
    )
    if getattr(request.module, "SSO_ON_STACK", False):
        env.update(
            OIDC_PROVIDER_ID="fakeidp",
            OIDC_NAME=oidc.name,
            OIDC_SERVER_URL=oidc.base_url,
            OIDC_CLIENT_ID=OIDC_CLIENT_ID,
            OIDC_CLIENT_SECRET=OIDC_CLIENT_SECRET,
        )
    # See _orm_beside_playwright: the servers must keep Django's async-safety checks.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    port = free_port()
    group = Processes(log_dir)
    worker_args = celery_worker_args(f"journeys-{uuid.uuid4().hex[:8]}@%h", concurrency=8)
    try:
        group.start("worker", worker_args, env)
        group.start(
            "web",
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            env,
        )
        base_url = f"http://127.0.0.1:{port}"
        health = wait_for_health(base_url, group)
        assert health["mode"] == "service", health
        yield Stack(
            base_url=base_url,
            processes=group,
            llm=llm,
            stripe=stripe,
            oidc=oidc,
            log_dir=log_dir,
            env=env,
            worker_args=worker_args,
        )
    finally:
        group.stop()
        llm.stop()
        stripe.stop()
        oidc.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        for name in ["web", *(name for name, _ in group.children if name.startswith("worker"))]:
            source = log_dir / f"{name}.log"
            if source.exists():
                shutil.copyfile(source, ARTIFACTS / f"{worker}{'-' if worker else ''}{name}.log")
        redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread, so Django refuses ORM calls here ("async
    context"). Allowed for the journeys' own ORM calls only; never given to the servers (see ``stack``)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _journey_db(_orm_beside_playwright, transactional_db):
    """Every journey writes through the real servers: committed rows, the price table seeded."""
    from django.core.management import call_command

    call_command("seed_model_pricing", verbosity=0)


def make_user(email: str, **fields):
    """An account made the way the servers can log it into: a verified email address (verification is
    mandatory on the stack) and a password hash the servers' hashers read (the test settings use MD5)."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from cohorta.accounts.models import User

    user = User.objects.create(email=email, **fields)
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    user.save(update_fields=["password"])
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def log_in(page, email: str, path: str = "/accounts/login/") -> None:
    page.goto(path)
    page.get_by_label(re.compile("email", re.I)).fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("^Log in$", re.I)).click()
    page.wait_for_url(lambda url: "/login/" not in url)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Chromium for this module only: Playwright's loop must be gone before other tests use the ORM."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=STEP_TIMEOUT_MS)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, stack, request) -> Iterator:
    context = browser.new_context(
        base_url=stack.base_url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # confirm() before deleting a guide section, ending…
    request.node._journey_page = page
    (ARTIFACTS / f"failed-{request.node.name}.png").unlink(missing_ok=True)
    request.node._journey_stack = stack
    yield page
    context.close()


class Screenshots:
    """``shot("signup")`` saves the page as ``artifacts/journeys/<NN>-signup.png``. Each journey owns
    the numbers ``first`` to ``first + span - 1``, so files sort in journey order, whichever ran."""

    def __init__(self, page, first: int, span: int = 10) -> None:
        self.page = page
        self.number = first
        self.last = first + span - 1
        self.saved: list[Path] = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):  # this journey's files from an earlier run
            number = old.name.split("-", 1)[0]
            if number.isdigit() and first <= int(number) <= self.last:
                old.unlink()

    def __call__(self, step: str) -> Path:
        assert self.number <= self.last, f"screenshot {step!r} is past this journey's numbers"
        path = ARTIFACTS / f"{self.number:02d}-{step}.png"
        # From the top: a full-page shot of a scrolled page paints the sticky navbar mid-page.
        self.page.evaluate("window.scrollTo(0, 0)")
        time.sleep(0.15)  # let CSS transitions (progress bars, fades) settle
        self.page.screenshot(path=str(path), full_page=True, animations="disabled")
        self.saved.append(path)
        self.number += 1
        return path


@pytest.fixture
def screenshots(page):
    return lambda first, span=10: Screenshots(page, first, span)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed journey gets the page as it was and the server/worker logs, in the report and on disk."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    stack = getattr(item, "_journey_stack", None)
    page = getattr(item, "_journey_page", None)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if page is not None:
        try:
            page.screenshot(path=str(ARTIFACTS / f"failed-{item.name}.png"), full_page=True)
            report.sections.append(("journey", f"page at failure: {page.url}; screenshot failed-{item.name}.png"))
        except Exception as exc:  # the page may be gone: the logs matter more
            report.sections.append(("journey", f"no failure screenshot: {exc}"))
    if stack is not None:
        report.sections.append(("server and worker logs (tails)", stack.logs()))
