"""Validation against a real human survey.

A ``Reference`` is a survey real people answered, uploaded as a CSV, with its mapping (which columns are
questions, on which scale, and which are demographics). A ``Validation`` runs the same questions on a
panel matched to the reference's respondents (one persona per sampled respondent, their demographics as
its sampled core) and scores how close the synthetic answers came, question by question, against
honest baselines (``scorecard``)."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class Reference(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="references")
    name = models.CharField(max_length=120)
    filename = models.CharField(max_length=255, blank=True)
    size = models.PositiveIntegerField(default=0, help_text="Bytes uploaded.")
    row_count = models.PositiveIntegerField(default=0)
    # validation.reference.ReferenceTable.to_json(): the columns and every row, as uploaded.
    table = models.JSONField()
    # What the reader guessed, offered as the mapping page's starting point.
    suggested = models.JSONField(default=dict, blank=True)
    # The mapping the researcher confirmed ({} until then): questions, demographics, weight.
    mapping = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_mapped(self) -> bool:
        return bool(self.mapping.get("questions"))


class ValidationState(models.TextChoices):
    PANEL = "panel", "Writing the matched panel"
    SURVEY = "survey", "Asking the questions"
    SCORING = "scoring", "Scoring"
    DONE = "done", "Done"
    FAILED = "failed", "Stopped"


class Validation(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="validations")
    reference = models.ForeignKey(
        Reference, null=True, blank=True, on_delete=models.SET_NULL, related_name="validations"
    )
    # Kept when the reference is deleted: the scorecard says what it was compared with.
    reference_name = models.CharField(max_length=120)
    mapping = models.JSONField(help_text="The reference's mapping as it was when the validation started.")
    size = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(1000)])
    seed = models.BigIntegerField()
    state = models.CharField(max_length=12, choices=ValidationState.choices, default=ValidationState.PANEL)
    error = models.CharField(max_length=600, blank=True)
    panel = models.ForeignKey("panels.Panel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    survey = models.ForeignKey("surveys.Survey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run = models.ForeignKey("surveys.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # validation.scorecard output: per question cards, subgroups, themes, the verdict.
    scorecard = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When it last began scoring: one whose worker died mid-scoring is failed by the reaper after a while.
    scoring_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Validation of {self.reference_name}"
