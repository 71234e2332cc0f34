"""What exact replay keeps: validated AI answers, which run used which, and each run's methods.

A ``CachedResponse`` is one validated answer to one request (a completion, or a batch of embeddings). The
request is its ``request_hash``: the provider, the resolved model snapshot, the parameters and the full
messages. The same request drawn n times makes n entries (``draw`` 0…n-1), so sampling again is never
served an old answer. Errors and answers that failed validation are never stored.

A ``RunRecord`` is one replayable piece of work (a session, a survey run, a panel build), named by its
``scope`` ("focusgroup:12"). Its ``RunCall`` rows say which entry answered its k-th request with a given
hash, which is what a replay follows; the answers themselves are shared. ``methods`` is what the run was
made with: model snapshots per alias, prompt template hashes, the embedding model, seeds.
"""

from django.db import models
from django.utils import timezone


class CacheKind(models.TextChoices):
    COMPLETION = "completion", "Completion"
    EMBEDDING = "embedding", "Embeddings"


class CachedResponse(models.Model):
    request_hash = models.CharField(max_length=64, db_index=True)
    draw = models.PositiveIntegerField(default=0, help_text="The n-th answer to this same request.")
    kind = models.CharField(max_length=16, choices=CacheKind.choices, default=CacheKind.COMPLETION)
    feature = models.CharField(max_length=64)
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=120, help_text="The model asked for (the alias's configured model).")
    model_snapshot = models.CharField(max_length=120, help_text="The model the provider said it ran.")
    text = models.TextField(blank=True, help_text="The answer's text, or the vectors (base64 float32).")
    finish_reason = models.CharField(max_length=32, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_replayed_at = models.DateTimeField(null=True, blank=True)
    replays = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "cached AI answer"
        constraints = [
            models.UniqueConstraint(fields=["request_hash", "draw"], name="llm_cache_request_draw_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.feature} · {self.model_snapshot} · draw {self.draw}"


class ReplayMode(models.TextChoices):
    LIVE = "live", "Live: every answer from the AI provider"
    REPLAY = "replay", "Exact replay: every answer from the cache"
    REPLAY_THEN_LIVE = "replay_live", "Replay what is cached, ask the AI provider for the rest"


class RunRecord(models.Model):
    scope = models.CharField(max_length=64, unique=True)
    mode = models.CharField(max_length=16, choices=ReplayMode.choices, default=ReplayMode.LIVE)
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays")
    methods = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "recorded run"

    def __str__(self) -> str:
        return self.scope


class RunCall(models.Model):
    run = models.ForeignKey(RunRecord, on_delete=models.CASCADE, related_name="calls")
    request_hash = models.CharField(max_length=64)
    occurrence = models.PositiveIntegerField(help_text="This run's k-th request with this hash.")
    entry = models.ForeignKey(CachedResponse, null=True, blank=True, on_delete=models.SET_NULL, related_name="uses")
    feature = models.CharField(max_length=64)
    from_cache = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "request_hash", "occurrence"], name="llm_runcall_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.run} · {self.feature} #{self.occurrence}"


class CacheDay(models.Model):
    """Lookups per day, for the admin's hit rate: a replay's hits and its misses."""

    day = models.DateField(unique=True)
    hits = models.PositiveIntegerField(default=0)
    misses = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.day}: {self.hits} hits, {self.misses} misses"
