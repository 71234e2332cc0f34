from typing import TypedDict

from django.conf import settings
from django.db import models
from django.utils import timezone


class _DecimalPlaces(TypedDict):
    max_digits: int
    decimal_places: int


USD: _DecimalPlaces = {"max_digits": 12, "decimal_places": 6}


class ModelPrice(models.Model):
    """What one model costs per million tokens from a date on. Rows are never
    edited to change a price: add a row with a later effective_from, so old
    events keep the price they were made at."""

    model = models.CharField(
        max_length=120, db_index=True, help_text="Canonical model name, as the provider reports it."
    )
    provider = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="Blank: the price on every provider. A provider name (as in LLM_PROVIDERS, e.g. azure) when the "
        "same model costs something else there; its calls use this row before the blank one.",
    )
    effective_from = models.DateTimeField(default=timezone.now)
    input_per_1m = models.DecimalField("input $/1M", **USD)
    cached_input_per_1m = models.DecimalField("cached input $/1M", null=True, blank=True, **USD)
    output_per_1m = models.DecimalField("output $/1M", **USD)
    tier_threshold_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Prompt size (tokens) above which the second-tier prices apply, e.g. 200000."
    )
    tier2_input_per_1m = models.DecimalField("tier 2 input $/1M", null=True, blank=True, **USD)
    tier2_cached_input_per_1m = models.DecimalField("tier 2 cached input $/1M", null=True, blank=True, **USD)
    tier2_output_per_1m = models.DecimalField("tier 2 output $/1M", null=True, blank=True, **USD)
    notes = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["model", "provider", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "provider", "effective_from"], name="model_price_unique_from")
        ]

    def __str__(self) -> str:
        on = f" on {self.provider}" if self.provider else ""
        return f"{self.model}{on} from {self.effective_from:%Y-%m-%d}"


class ModelAlias(models.Model):
    """Another name for a priced model: a dated snapshot or a retired name."""

    alias = models.CharField(max_length=120, unique=True)
    model = models.CharField(max_length=120, help_text="The canonical model name it prices as.")

    class Meta:
        ordering = ["alias"]
        verbose_name_plural = "model aliases"

    def __str__(self) -> str:
        return f"{self.alias} → {self.model}"


class UsageStatus(models.TextChoices):
    OK = "ok", "OK"
    ERROR = "error", "Error"


class UsageSource(models.TextChoices):
    REPORTED = "reported", "Reported by the provider"
    ESTIMATED = "estimated", "Estimated (provider sent no usage)"
    NONE = "none", "No usage (the call failed before the model ran)"


class UsageEvent(models.Model):
    """One request to a model, successful or not. Append-only: only the
    backfill command may fill in a cost later."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_events"
    )
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_events")
    focus_group_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    persona_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    feature = models.CharField(max_length=64, db_index=True)
    provider = models.CharField(max_length=64, help_text="The named provider (LLM_PROVIDERS), e.g. openai or gemini.")
    model = models.CharField(max_length=120, db_index=True, help_text="The model asked for (Azure: the deployment).")
    # Database defaults on the columns added after launch: a process still running the previous code (a
    # rolling deploy) and raw inserts (the export test's million rows) leave them out.
    model_snapshot = models.CharField(
        max_length=120,
        blank=True,
        default="",
        db_default="",
        help_text="The model the provider says it ran, e.g. a dated snapshot.",
    )
    model_alias = models.CharField(max_length=16, blank=True, help_text="main or mini")
    input_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(
        max_digits=14, decimal_places=8, null=True, blank=True, help_text="Empty when the model had no price."
    )
    price_missing = models.BooleanField(default=False, db_index=True)
    usage_source = models.CharField(max_length=16, choices=UsageSource.choices, default=UsageSource.REPORTED)
    status = models.CharField(max_length=16, choices=UsageStatus.choices, default=UsageStatus.OK, db_index=True)
    error_class = models.CharField(max_length=120, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    streamed = models.BooleanField(default=False)
    simulated = models.BooleanField(default=False)
    attempt = models.PositiveSmallIntegerField(default=1)
    request_id = models.CharField(max_length=120, blank=True)
    cached = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Replayed from the response cache: no request reached the provider and it cost nothing.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        # On Postgres, migration 0002 adds (user, created_at) INCLUDE (cost_usd) for month spends.
        indexes = [
            models.Index(fields=["user", "created_at"], name="usage_user_created_idx"),
            models.Index(fields=["focus_group_id", "created_at"], name="usage_fg_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.feature} {self.model} {self.status} ({self.created_at:%Y-%m-%d %H:%M})"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.pop("allow_update", False):
            raise RuntimeError("Usage events are append-only.")
        super().save(*args, **kwargs)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
