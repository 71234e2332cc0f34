import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

MIN_PARTICIPANTS = 2
MAX_PARTICIPANTS = 12


class FocusGroupStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    LIVE = "live", "Live"
    PAUSED = "paused", "Paused"
    ENDED = "ended", "Ended"


FOCUS_GROUP_TITLE_MAX = 200


class FocusGroup(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="focus_groups")
    title = models.CharField(max_length=FOCUS_GROUP_TITLE_MAX)
    objective = models.TextField(help_text="What the research needs to learn.")
    concept = models.TextField(blank=True, help_text="The product or concept under discussion, if any.")
    status = models.CharField(max_length=10, choices=FocusGroupStatus.choices, default=FocusGroupStatus.DRAFT)
    archived = models.BooleanField(default=False, db_index=True)
    cost_cap_usd = models.DecimalField(
        "spending cap (USD)",
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Optional cap on this session's LLM cost; AI work stops when it is reached.",
    )
    # The last sequence number handed out; messages are numbered 1, 2, 3… per session.
    last_sequence = models.PositiveIntegerField(default=0)
    # Rolling context: a running summary of everything up to summary_through.
    summary = models.TextField(blank=True)
    summary_through = models.PositiveIntegerField(default=0)
    compare_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="comparisons",
        help_text="The session whose guide and personas this one re-runs on another model.",
    )
    model_alias = models.CharField(
        max_length=16, blank=True, help_text="Model alias every AI turn uses here; empty: each feature's own."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def group_name(self) -> str:
        return f"focusgroup.{self.pk}"

    @property
    def accepts_messages(self) -> bool:
        return self.status != FocusGroupStatus.ENDED and not self.archived


class Participant(models.Model):
    focus_group = models.ForeignKey(FocusGroup, on_delete=models.CASCADE, related_name="participants")
    persona = models.ForeignKey("personas.Persona", on_delete=models.PROTECT, related_name="participations")
    position = models.PositiveSmallIntegerField(default=0)
    added_at = models.DateTimeField(default=timezone.now)

    # Not a field: set by the discussion page (the @-mention that names this participant).
    handle: str

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["focus_group", "persona"], name="participant_unique_persona"),
        ]

    def __str__(self) -> str:
        return f"{self.persona} in {self.focus_group_id}"


class AssetKind(models.TextChoices):
    DOCUMENT = "document", "Document"
    IMAGE = "image", "Image"


def asset_upload_to(asset, filename: str) -> str:
    return f"focusgroups/{asset.focus_group_id}/{uuid.uuid4().hex}/{filename}"


class Asset(models.Model):
    """Material the personas look at: document text, or an image and its description."""

    focus_group = models.ForeignKey(FocusGroup, on_delete=models.CASCADE, related_name="assets")
    kind = models.CharField(max_length=10, choices=AssetKind.choices)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveIntegerField(default=0)
    text = models.TextField(blank=True, help_text="Extracted text (documents).")
    description = models.TextField(blank=True, help_text="What the vision model saw (images).")
    image = models.FileField(upload_to=asset_upload_to, blank=True, help_text="Re-encoded copy (images).")
    warnings = models.JSONField(default=list, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    # Not fields: set by the assets page on each row it lists (see focusgroups.assets.views).
    icon: str
    type_label: str
    preview_cut: bool
    describing: bool
    simulated: bool

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.filename

    @property
    def reference_text(self) -> str:
        return self.text if self.kind == AssetKind.DOCUMENT else self.description


class DiscussionGuide(models.Model):
    focus_group = models.OneToOneField(FocusGroup, on_delete=models.CASCADE, related_name="guide")
    data = models.JSONField(
        default=dict, help_text="{title, sections: [{title, goal, turn_budget, questions: [{text, probes: []}]}]}"
    )
    simulated = models.BooleanField(default=False)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Guide for {self.focus_group_id}"


class MessageRole(models.TextChoices):
    RESEARCHER = "researcher", "Researcher"
    MODERATOR = "moderator", "AI moderator"
    PERSONA = "persona", "Persona"
    SYSTEM = "system", "System"


class MessageStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"
    RETRIED = "retried", "Failed, answered on retry"


class Message(models.Model):
    """A saved turn of the discussion. Numbered per session; saved only when complete
    (token deltas are ephemeral), so replay by sequence number is exact."""

    focus_group = models.ForeignKey(FocusGroup, on_delete=models.CASCADE, related_name="messages")
    sequence = models.PositiveIntegerField()
    role = models.CharField(max_length=12, choices=MessageRole.choices)
    persona = models.ForeignKey("personas.Persona", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    speaker_name = models.CharField(max_length=120, blank=True, help_text="Kept if the persona is deleted.")
    content = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.COMPLETE)
    error = models.CharField(max_length=500, blank=True)
    mentions = models.JSONField(default=list, blank=True, help_text="Persona ids addressed with @.")
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    answer_id = models.UUIDField(null=True, blank=True, unique=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    simulated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["focus_group", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["focus_group", "sequence"], name="message_unique_sequence"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.speaker_name}: {self.content[:40]}"


class AnswerStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    STREAMING = "streaming", "Streaming"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Answer(models.Model):
    """One persona's pending answer to a researcher message: the unit of work of a round."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    focus_group = models.ForeignKey(FocusGroup, on_delete=models.CASCADE, related_name="answers")
    persona = models.ForeignKey("personas.Persona", on_delete=models.CASCADE, related_name="+")
    prompt_message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="answers")
    status = models.CharField(max_length=10, choices=AnswerStatus.choices, default=AnswerStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    retry_of = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # When a worker claimed it: an answer still streaming long after this lost its worker (answers_reap).
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Answer {self.pk} ({self.status})"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping after this turn"
    PAUSED = "paused", "Paused"
    INTERRUPTED = "interrupted", "Interrupted"
    ENDED = "ended", "Ended"


class RunEndReason(models.TextChoices):
    GUIDE_DONE = "guide_done", "The discussion guide is done"
    TURN_BUDGET = "turn_budget", "The turn budget was reached"
    STOPPED = "stopped", "Ended by the researcher"
    QUOTA = "quota", "The monthly AI budget ran out"
    SESSION_CAP = "session_cap", "The session's spending cap was reached"
    CREDITS = "credits", "Credits ran out"
    # Not an end: the run pauses and can be resumed once the provider answers again.
    PROVIDER_UNAVAILABLE = "provider_unavailable", "The AI provider is not answering"


class AutonomousRun(models.Model):
    """An AI moderator working through the guide. The state lives here; each turn is a
    short task that claims turn ``turns_done`` and saves it whole, so a dead worker loses
    at most the turn in flight and a resumed run never repeats or skips one."""

    focus_group = models.ForeignKey(FocusGroup, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.RUNNING, db_index=True)
    end_reason = models.CharField(max_length=24, choices=RunEndReason.choices, blank=True)
    turn_budget = models.PositiveSmallIntegerField(default=30)
    turns_done = models.PositiveIntegerField(default=0)
    claimed_turn = models.PositiveIntegerField(null=True, blank=True)
    section_index = models.PositiveSmallIntegerField(default=0)
    question_index = models.PositiveSmallIntegerField(default=0)
    question_turns = models.PositiveSmallIntegerField(default=0, help_text="Turns spent on the current question.")
    section_turns = models.PositiveSmallIntegerField(default=0, help_text="Turns spent in the current section.")
    opened = models.BooleanField(default=False, help_text="The moderator has opened the session.")
    speaking_counts = models.JSONField(default=dict, blank=True)
    next_speaker = models.ForeignKey(
        "personas.Persona", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    next_reason = models.CharField(max_length=300, blank=True)
    failed_turns = models.PositiveSmallIntegerField(default=0, help_text="Turns that failed in a row.")
    missed_turns = models.JSONField(
        default=dict, blank=True, help_text="Failed turns per persona: they count in the rotation like spoken ones."
    )
    last_failed_speaker = models.ForeignKey(
        "personas.Persona", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    researcher_seen_through = models.PositiveIntegerField(
        default=0, help_text="The researcher's messages up to this sequence number have reached the moderator."
    )
    credit_transaction = models.ForeignKey(
        "billing.CreditTransaction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    refund_transaction = models.ForeignKey(
        "billing.CreditTransaction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life; after a failed turn, when the next attempt is due."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat_idx")]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.focus_group_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (RunStatus.RUNNING, RunStatus.STOPPING)


class LiveThemes(models.Model):
    """The emerging themes of a session while it runs: a quick read by the mini model after every N participant
    answers (App settings), shown as provisional until the final analysis. One row per session.

    ``claimed_answers`` is the idempotency key: a pass first moves it up to its multiple of N with a conditional
    UPDATE, so each multiple is read at most once, however many answers, tasks or retries arrive together."""

    focus_group = models.OneToOneField(FocusGroup, on_delete=models.CASCADE, related_name="live_themes")
    claimed_answers = models.PositiveIntegerField(
        default=0, help_text="The answer count (a multiple of N) the latest pass was started for."
    )
    answers = models.PositiveIntegerField(default=0, help_text="Participant answers the stored themes were read from.")
    through_sequence = models.PositiveIntegerField(default=0, help_text="The last message the stored themes read.")
    themes = models.JSONField(default=list, blank=True, help_text="[{title, note, sentiment, sequences}]")
    simulated = models.BooleanField(default=False)
    updated_at = models.DateTimeField(null=True, blank=True, help_text="When the stored themes were written.")

    class Meta:
        verbose_name = "live themes"
        verbose_name_plural = "live themes"

    def __str__(self) -> str:
        return f"Emerging themes of {self.focus_group_id} ({self.answers} answers)"


# --- quality: conformity ---------------------------------------------------------------------------

CONFORMITY_QUESTION_MAX = 300
CONFORMITY_OPTION_MAX = 80
CONFORMITY_OPTIONS_MIN = 2
CONFORMITY_OPTIONS_MAX = 6
DEFAULT_CONFORMITY_OPTIONS = ["Yes", "No", "Not sure"]


class ConformityCheck(models.Model):
    """The researcher's key question, which each participant answers privately (no transcript, one call each)
    before the discussion and again after it. The share of answers that move toward the initial majority is the
    session's conformity rate (``focusgroups.quality.conformity.conformity_result``). One per session; it exists
    while the check is on.

    ``before_started_at`` is the claim on the before round (set once, with the charge, when the run or the moderated
    discussion starts); ``after_started_at`` the claim on the after round (when the session ends). The question and
    options are fixed from the before round on: answers to two different questions do not compare."""

    focus_group = models.OneToOneField(FocusGroup, on_delete=models.CASCADE, related_name="conformity")
    question = models.CharField(max_length=CONFORMITY_QUESTION_MAX)
    options = models.JSONField(default=list, help_text="The answer options, 2–6 distinct short labels.")
    credit_transaction = models.ForeignKey(
        "billing.CreditTransaction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    credits_per_persona = models.PositiveIntegerField(default=0, help_text="The price when it was charged.")
    before_started_at = models.DateTimeField(null=True, blank=True)
    before_done_at = models.DateTimeField(null=True, blank=True)
    after_started_at = models.DateTimeField(null=True, blank=True)
    after_done_at = models.DateTimeField(null=True, blank=True)
    refunded_credits = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Conformity check of {self.focus_group_id}: {self.question}"

    @property
    def started(self) -> bool:
        return self.before_started_at is not None


class PrivatePhase(models.TextChoices):
    BEFORE = "before", "Before the discussion"
    AFTER = "after", "After the discussion"


class PrivateAnswerStatus(models.TextChoices):
    DONE = "done", "Answered"
    FAILED = "failed", "Failed"


class PrivateAnswer(models.Model):
    """One participant's private answer to the key question, before or after the discussion. A failed call is
    kept (with what went wrong) so the page can say who did not answer; it never has a choice."""

    conformity = models.ForeignKey(ConformityCheck, on_delete=models.CASCADE, related_name="answers")
    persona = models.ForeignKey("personas.Persona", on_delete=models.CASCADE, related_name="+")
    phase = models.CharField(max_length=6, choices=PrivatePhase.choices)
    status = models.CharField(max_length=6, choices=PrivateAnswerStatus.choices)
    choice = models.CharField(max_length=CONFORMITY_OPTION_MAX, blank=True)
    reason = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    memory = models.CharField(
        max_length=12, blank=True, help_text="What of the discussion the after answer saw: transcript or summary."
    )
    simulated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["conformity", "phase", "id"]
        constraints = [
            models.UniqueConstraint(fields=["conformity", "persona", "phase"], name="private_answer_unique_phase"),
        ]

    def __str__(self) -> str:
        return f"{self.persona_id} {self.phase}: {self.choice or self.status}"
