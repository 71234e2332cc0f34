"""Questionnaires and their runs on a panel of personas.

A run freezes the questionnaire (``Run.questions``) when it starts, so editing a survey never
changes results already collected; answers point at the frozen questions by their id.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class QuestionKind(models.TextChoices):
    LIKERT5 = "likert5", "Likert scale (5 points)"
    LIKERT7 = "likert7", "Likert scale (7 points)"
    NPS = "nps", "Rating 0–10 (NPS)"
    SINGLE = "single", "Single choice"
    MULTIPLE = "multiple", "Multiple choice"
    OPEN = "open", "Open text"


SCALE_KINDS = (QuestionKind.LIKERT5, QuestionKind.LIKERT7, QuestionKind.NPS)
CHOICE_KINDS = (QuestionKind.SINGLE, QuestionKind.MULTIPLE)
SCALE_POINTS: dict[str, int] = {QuestionKind.LIKERT5: 5, QuestionKind.LIKERT7: 7, QuestionKind.NPS: 11}


class Survey(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="surveys")
    title = models.CharField(max_length=200)
    intro = models.TextField(
        blank=True, max_length=4000, help_text="What respondents read before the questions (context, a concept…)."
    )
    randomize_questions = models.BooleanField(
        default=False, help_text="Show the questions in a different order to each respondent (the order is recorded)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class Question(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=QuestionKind.choices)
    text = models.TextField(max_length=1000)
    # Scale questions: one label per point, lowest first (a Likert question must have them).
    labels = models.JSONField(default=list, blank=True)
    # Choice questions: the options, in their written order.
    options = models.JSONField(default=list, blank=True)
    randomize_options = models.BooleanField(default=False)
    # Scale questions: the anchor statements SSR compares answers with; blank = the preset's.
    anchor_preset = models.CharField(max_length=40, blank=True)
    anchor_sets = models.JSONField(default=list, blank=True)
    direct_elicitation = models.BooleanField(
        default=True, help_text="Also ask for the number directly, shown beside the SSR rating as a method check."
    )

    # Not a field: set by the preview page on a scale question (its points, each with a label).
    points: list[dict]

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.text[:60]

    @property
    def is_scale(self) -> bool:
        return self.kind in SCALE_KINDS

    @property
    def is_choice(self) -> bool:
        return self.kind in CHOICE_KINDS


class Run(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="runs")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="survey_runs")
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="survey_run")
    panel_label = models.CharField(max_length=200, blank=True)
    # The questionnaire as it was when the run started: [{id, kind, text, labels, options, ...}].
    questions = models.JSONField(default=list)
    title = models.CharField(max_length=200)
    intro = models.TextField(blank=True)
    randomize_questions = models.BooleanField(default=False)
    seed = models.PositiveIntegerField(default=0)
    unit_cost = models.PositiveIntegerField(default=0, help_text="Credits per respondent.")
    # Why the run stopped early, when it did ("quota": the monthly AI budget ran out).
    stop_reason = models.CharField(max_length=32, blank=True)
    # A generated panel (surveys/panel.py): the run waits, without a job, while its personas are generated
    # into ``panel_folder`` (one brief per chunk, generated in turn by ``panel_job``); it starts when the last
    # is done, or stays not started with ``not_started`` saying why.
    panel_size = models.PositiveIntegerField(default=0, help_text="Personas asked for; 0 = not a generated panel.")
    panel_description = models.TextField(blank=True)
    panel_folder = models.ForeignKey(
        "personas.Folder", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    panel_briefs = models.ManyToManyField("personas.GenerationBrief", blank=True, related_name="+")
    panel_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    not_started = models.CharField(max_length=500, blank=True, help_text="Why the run never started, if it did not.")
    # The themes of the open answers (surveys/themes.py): {"generated_at", "model", "simulated", "questions":
    # {"<question id>": {"answers", "themes": [...], ...}}}. Replaced whole when a theme job succeeds, so a
    # failed or cancelled one leaves the last good themes; empty until the first succeeds.
    themes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.created_at:%Y-%m-%d})"

    @property
    def generating(self) -> bool:
        """Still waiting for its generated panel (no job yet, not given up)."""
        return bool(self.panel_size) and self.job_id is None and not self.not_started


class RespondentState(models.TextChoices):
    PENDING = "pending", "Waiting"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Answering"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


OPEN_RESPONDENT_STATES = (RespondentState.PENDING, RespondentState.QUEUED, RespondentState.RUNNING)


class Respondent(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="respondents")
    persona = models.ForeignKey("personas.Persona", null=True, blank=True, on_delete=models.SET_NULL)
    position = models.PositiveIntegerField(default=0)
    # Who answered, as they were then (segments are computed from this, not the live persona).
    profile = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=RespondentState.choices, default=RespondentState.PENDING)
    error = models.CharField(max_length=500, blank=True)
    question_order = models.JSONField(default=list, blank=True)
    simulated = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When it was handed out, then beaten by the task answering it: how the reaper tells a worker that
    # died (or a task the broker lost) from one still at work.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    # Not a field: set by surveys.pages.with_urls for the pages that list respondents (its page's URL).
    url: str

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["run", "state"], name="respondent_run_state_idx")]

    def __str__(self) -> str:
        return self.profile.get("name", f"Respondent {self.pk}")

    @property
    def name(self) -> str:
        return self.profile.get("name", "Respondent")


class AnswerStatus(models.TextChoices):
    OK = "ok", "Answered"
    EMPTY = "empty", "Empty answer"
    REFUSED = "refused", "Refused to answer"


class Answer(models.Model):
    respondent = models.ForeignKey(Respondent, on_delete=models.CASCADE, related_name="answers")
    question_id = models.PositiveIntegerField(help_text="The id of the question in the run's frozen questionnaire.")
    shown_position = models.PositiveSmallIntegerField(help_text="1 = asked first.")
    option_order = models.JSONField(default=list, blank=True)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=AnswerStatus.choices, default=AnswerStatus.OK)
    # Scale questions: the SSR distribution over the points, and its expected value.
    pmf = models.JSONField(null=True, blank=True)
    expected = models.FloatField(null=True, blank=True)
    # The number the respondent stated when asked directly (direct elicitation).
    direct = models.SmallIntegerField(null=True, blank=True)
    # Choice questions: what was picked.
    choices = models.JSONField(default=list, blank=True)

    # Not fields: set by surveys.pages.respondent_answers for the respondent's page (the question as
    # frozen in the run, its kind in words and, for a scale answer, the distribution as bars).
    question: dict
    kind_label: str
    bars: list[dict]
    scale_top: int

    class Meta:
        ordering = ["shown_position"]
        constraints = [models.UniqueConstraint(fields=["respondent", "question_id"], name="answer_unique_per_question")]

    def __str__(self) -> str:
        return f"Answer to question {self.question_id} by respondent {self.respondent_id}"


class QualityCheck(models.Model):
    """The quality checks of one finished run (surveys/quality/): test-retest (a second, fresh run of the same
    questions on the same respondents, ``retest_run``, and weighted Cohen's κ per item), sycophancy (each scale
    item's leading twin asked in a fresh context: ``LeadingAnswer``), the judge's adherence and
    self-consistency scores per respondent (personas' ``PersonaCheck``) and the diversity of the answers.

    Asked for when a run starts, it waits (no job) until the run ends; asked for on a finished run, it starts at
    once. Its credits are reserved up front under ``survey-quality:<id>:reserve`` (the retest priced like another
    run of the survey, the leading pass and the judge at the App settings' *quality check credits per persona*
    per respondent) and what was not delivered is refunded when it ends."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="quality_checks")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="survey_quality_checks")
    job = models.OneToOneField(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="survey_quality_check"
    )
    # The fresh second run of the same questions on the same respondents (a normal run, started by the check).
    retest_run = models.OneToOneField(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="retest_for")
    # What the check was asked to do: "retest", "leading", "judge", "diversity" (parts that cannot apply to this
    # run are left out, with the reason in ``results``).
    parts = models.JSONField(default=list, blank=True)
    respondents = models.PositiveIntegerField(default=0, help_text="Respondents the credits were reserved for.")
    retest_unit_cost = models.PositiveIntegerField(default=0, help_text="Credits per respondent for the retest.")
    pass_unit_cost = models.PositiveIntegerField(
        default=0, help_text="Credits per respondent for each of the leading-question pass and the judge."
    )
    reserved = models.PositiveIntegerField(default=0)
    delivered_leading = models.PositiveIntegerField(default=0)
    delivered_judge = models.PositiveIntegerField(default=0)
    settled = models.BooleanField(default=False, help_text="Its unused credits have been refunded.")
    # The reference variance per question id (from a human survey), when the caller had one: {"<id>": 1.23}.
    reference_variances = models.JSONField(default=dict, blank=True)
    # Each scale item's leading twin: {"<question id>": {"text": "...", "error": ""}}.
    twins = models.JSONField(default=dict, blank=True)
    results = models.JSONField(default=dict, blank=True)
    not_started = models.CharField(max_length=500, blank=True, help_text="Why it never started, if it did not.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Quality check {self.pk} of run {self.run_id}"

    @property
    def waiting(self) -> bool:
        """Asked for with the run, which has not ended yet."""
        return self.job_id is None and not self.not_started


class LeadingAnswer(models.Model):
    """A respondent's answer to a scale item's leading twin (surveys/quality/), rated like the run rates."""

    quality_check = models.ForeignKey(QualityCheck, on_delete=models.CASCADE, related_name="leading_answers")
    respondent = models.ForeignKey(Respondent, on_delete=models.CASCADE, related_name="leading_answers")
    question_id = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=AnswerStatus.choices, default=AnswerStatus.OK)
    pmf = models.JSONField(null=True, blank=True)
    expected = models.FloatField(null=True, blank=True)
    direct = models.SmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["respondent_id", "question_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["quality_check", "respondent", "question_id"], name="leading_answer_unique_per_question"
            )
        ]

    def __str__(self) -> str:
        return f"Leading answer to {self.question_id} by respondent {self.respondent_id}"
