from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

APP_SETTINGS_CACHE_KEY = "core:app-settings:v1"
CACHE_SECONDS = 30

DEFAULT_PERSONA_CREDIT_COST = 2
DEFAULT_PERSONA_MODIFY_CREDIT_COST = 2
DEFAULT_SESSION_RUN_CREDIT_COST = 40
DEFAULT_LIVE_THEMES_EVERY_TURNS = 6
# A new account's first study, on the default costs: six AI personas, one AI change to one of them, one
# autonomous run (its themes and report are free): 6 × 2 + 2 + 40 = 54 credits.
FIRST_STUDY_CREDITS = (
    6 * DEFAULT_PERSONA_CREDIT_COST + DEFAULT_PERSONA_MODIFY_CREDIT_COST + DEFAULT_SESSION_RUN_CREDIT_COST
)
# The trial covers it, rounded up to the next ten (60): without Stripe set up there is no buying more.
DEFAULT_TRIAL_CREDITS = -(-FIRST_STUDY_CREDITS // 10) * 10


class AppSettings(models.Model):
    """Business settings operators change in the admin: one row, cached briefly."""

    trial_credits = models.PositiveIntegerField(
        default=DEFAULT_TRIAL_CREDITS,
        help_text=(
            f"Credits granted once on sign-up. The default ({DEFAULT_TRIAL_CREDITS}) covers a first study at the "
            f"default costs: six personas, one AI change and one autonomous run ({FIRST_STUDY_CREDITS} credits)."
        ),
    )
    persona_credit_cost = models.PositiveIntegerField(
        default=DEFAULT_PERSONA_CREDIT_COST, help_text="Credits per persona created by AI."
    )
    persona_modify_credit_cost = models.PositiveIntegerField(
        default=DEFAULT_PERSONA_MODIFY_CREDIT_COST, help_text="Credits per AI modification of a persona."
    )
    session_run_credit_cost = models.PositiveIntegerField(
        default=DEFAULT_SESSION_RUN_CREDIT_COST, help_text="Credits to run a focus group in autonomous mode."
    )
    autonomous_failed_turns_to_pause = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="An autonomous run pauses (the AI provider is not answering) after this many failed turns in a row.",
    )
    autonomous_retry_seconds = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(300)],
        help_text="Wait before retrying a failed autonomous turn; three times longer after each further failure.",
    )
    autonomous_refund_min_answers = models.PositiveSmallIntegerField(
        default=3,
        help_text=(
            "An autonomous run that stops with fewer participant answers than this (for any reason but the "
            "researcher ending it) gets its credits back in full, once. 0 switches these refunds off."
        ),
    )
    live_themes_every_turns = models.PositiveSmallIntegerField(
        "emerging themes every (answers)",
        default=DEFAULT_LIVE_THEMES_EVERY_TURNS,
        validators=[MaxValueValidator(100)],
        help_text=(
            "During a session, a quick read of the emerging themes (the mini model, free in credits, metered) "
            "after every this many participant answers, shown as provisional on the session page. 0 switches it off."
        ),
    )
    survey_credits_per_block = models.PositiveIntegerField(
        "survey credits per respondent and block",
        default=1,
        help_text="Credits for one survey respondent answering one block of questions (see the block size).",
    )
    survey_questions_per_block = models.PositiveSmallIntegerField(
        "survey questions per block",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(200)],
        help_text="A survey's questions are priced in blocks of this many, rounded up (11 questions = 2 blocks).",
    )
    survey_parallelism = models.PositiveSmallIntegerField(
        "survey respondents at once",
        default=8,
        validators=[MinValueValidator(1), MaxValueValidator(64)],
        help_text="How many respondents of one survey run answer at the same time (one task each).",
    )
    survey_max_panel = models.PositiveIntegerField(
        "largest survey panel",
        default=1000,
        validators=[MinValueValidator(1), MaxValueValidator(10000)],
        help_text="The most personas one survey run may ask.",
    )
    panel_light_credit_cost = models.PositiveIntegerField(
        "credits per light panel persona",
        default=1,
        help_text=(
            "Credits per persona of a panel built with light profiles (one quick call each). Panels with full "
            "profiles cost the persona price above."
        ),
    )
    panel_parallelism = models.PositiveSmallIntegerField(
        "panel personas at once",
        default=8,
        validators=[MinValueValidator(1), MaxValueValidator(64)],
        help_text="How many personas of one panel are written at the same time (one task each).",
    )
    panel_max_size = models.PositiveIntegerField(
        "largest panel",
        default=1000,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="The most personas one panel may have (at most 1,000).",
    )
    quality_judge_bar = models.PositiveSmallIntegerField(
        "quality bar (0–9)",
        default=6,
        validators=[MaxValueValidator(9)],
        help_text=(
            "Personas the quality judge scores below this (0–9) on in-character adherence or self-consistency are "
            "flagged on their page, in reports and in exports."
        ),
    )
    quality_credits_per_persona = models.PositiveIntegerField(
        "quality check credits per persona",
        default=1,
        help_text=(
            "Credits for checking one persona in a quality check: the judge's scores, private before-and-after "
            "answers in a focus group, or a leading-question pass in a survey. A survey's retest is priced like "
            "another run of the survey."
        ),
    )
    llm_cache_days = models.PositiveSmallIntegerField(
        "keep cached AI answers (days)",
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=(
            "Validated AI answers are kept this long so runs can be replayed exactly, at no provider cost. Older "
            "entries are deleted every night; a replay that needs them says how many are missing."
        ),
    )
    default_monthly_quota_usd = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("25.00"),
        help_text="LLM cost (USD) a user may incur per calendar month unless their own quota is set.",
    )
    quota_warning_ratio = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.80"),
        validators=[MinValueValidator(Decimal("0.10")), MaxValueValidator(Decimal("1.00"))],
        help_text="Warn users when their month's spend reaches this share of the quota.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "app settings"
        verbose_name_plural = "app settings"

    def __str__(self) -> str:
        return "App settings"

    def save(self, *args, **kwargs):
        self.pk = 1  # a singleton: there is only ever row 1
        super().save(*args, **kwargs)
        cache.delete(APP_SETTINGS_CACHE_KEY)

    def delete(self, *args, **kwargs):
        raise RuntimeError("App settings cannot be deleted; edit them instead.")


def app_settings_in(found: dict[str, Any]) -> AppSettings:
    """The app settings from cache entries read with others (``APP_SETTINGS_CACHE_KEY`` among them): the
    cached row when it was there, else read and cached as ``get_app_settings`` does."""
    settings_row = found.get(APP_SETTINGS_CACHE_KEY)
    return settings_row if settings_row is not None else get_app_settings()


def get_app_settings() -> AppSettings:
    settings_row = cache.get(APP_SETTINGS_CACHE_KEY)
    if settings_row is None:
        settings_row, _ = AppSettings.objects.get_or_create(pk=1)
        cache.set(APP_SETTINGS_CACHE_KEY, settings_row, CACHE_SECONDS)
    return settings_row
