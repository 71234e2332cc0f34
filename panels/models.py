"""Panels: personas whose demographic core is sampled from a target population, not invented.

A panel stores what it was drawn from (``target``: the population's marginals as they were, after any
quotas), the quotas and the seed, so the same target and seed give the same panel. Each member is one
sampled core (``PanelMember.core``) waiting for, or given, a persona; the model writes only what the
core does not fix (name, occupation, personality, habits…).
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class TargetKind(models.TextChoices):
    BUNDLED = "bundled", "Built-in population"
    MARGINALS = "marginals", "Uploaded marginals"
    MICRODATA = "microdata", "Uploaded microdata"
    REFERENCE = "reference", "A real survey's respondents"


class ProfileDepth(models.TextChoices):
    LIGHT = "light", "Light (one quick call per person, for surveys)"
    FULL = "full", "Full (two-stage profile, for focus groups)"


class PopulationFile(models.Model):
    """Population marginals a user uploaded (any country): one share per category per dimension."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="populations")
    name = models.CharField(max_length=120)
    filename = models.CharField(max_length=255, blank=True)
    # panels.population.Population.to_json()
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class MicrodataFile(models.Model):
    """One row per real respondent, with weights; panels drawn from it keep its joint structure."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="microdata_files")
    name = models.CharField(max_length=120)
    filename = models.CharField(max_length=255, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    # panels.microdata.Microdata.to_json()
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Panel(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="panels")
    name = models.CharField(max_length=120)
    size = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(1000)])
    seed = models.BigIntegerField()
    depth = models.CharField(max_length=8, choices=ProfileDepth.choices, default=ProfileDepth.LIGHT)
    target_kind = models.CharField(max_length=12, choices=TargetKind.choices)
    target_key = models.CharField(max_length=40, blank=True, help_text="The built-in population's key.")
    population_file = models.ForeignKey(PopulationFile, null=True, blank=True, on_delete=models.SET_NULL)
    microdata_file = models.ForeignKey(MicrodataFile, null=True, blank=True, on_delete=models.SET_NULL)
    # The population the panel was drawn to (Population.to_json(), quotas applied), kept even if the
    # uploaded file is deleted: its composition is always read against this.
    target = models.JSONField()
    quotas = models.JSONField(default=list, blank=True)
    description = models.TextField(
        blank=True, max_length=2000, help_text="Optional context for the people (e.g. “shoppers who buy pet food”)."
    )
    unit_cost = models.PositiveIntegerField(default=0, help_text="Credits per persona, as reserved.")
    folder = models.ForeignKey(
        "personas.Folder", null=True, blank=True, on_delete=models.SET_NULL, related_name="panels"
    )
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="panel")
    # "quota": the owner's monthly AI budget ran out while it was being written.
    stop_reason = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class MemberState(models.TextChoices):
    PENDING = "pending", "Waiting"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Being written"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


OPEN_MEMBER_STATES = (MemberState.PENDING, MemberState.QUEUED, MemberState.RUNNING)


class PanelMember(models.Model):
    panel = models.ForeignKey(Panel, on_delete=models.CASCADE, related_name="members")
    position = models.PositiveIntegerField()
    # {dimension key: category}, as sampled.
    core = models.JSONField()
    persona = models.OneToOneField(
        "personas.Persona", null=True, blank=True, on_delete=models.SET_NULL, related_name="panel_member"
    )
    state = models.CharField(max_length=16, choices=MemberState.choices, default=MemberState.PENDING)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["panel", "state"], name="panel_member_state_idx")]
        constraints = [models.UniqueConstraint(fields=["panel", "position"], name="panel_member_unique_position")]

    def __str__(self) -> str:
        return f"{self.panel_id} #{self.position}"


class QualityCheck(models.Model):
    """A panel's quality check (panels/quality.py): each member with a persona answers a short probe
    interview and ten Big Five items, the quality judge scores the answers (personas.PersonaCheck), and
    the panel's diversity is measured at the end (``diversity``, panels/diversity.py)."""

    panel = models.ForeignKey(Panel, on_delete=models.CASCADE, related_name="quality_checks")
    job = models.OneToOneField(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="panel_quality_check"
    )
    size = models.PositiveIntegerField(default=0, help_text="How many personas are checked.")
    unit_cost = models.PositiveIntegerField(default=0, help_text="Credits per persona, as reserved.")
    # panels.diversity.panel_diversity(): per-item variance against the human reference, answer distance.
    diversity = models.JSONField(default=dict, blank=True)
    # "quota": the owner's monthly AI budget ran out during the check.
    stop_reason = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Quality check {self.pk} of panel {self.panel_id}"


class QualityCheckMember(models.Model):
    """One persona of a quality check: its probe answers, its Big Five items and the judge's check."""

    quality_check = models.ForeignKey(QualityCheck, on_delete=models.CASCADE, related_name="members")
    position = models.PositiveIntegerField()
    persona = models.ForeignKey(
        "personas.Persona", null=True, blank=True, on_delete=models.SET_NULL, related_name="panel_quality_members"
    )
    state = models.CharField(max_length=16, choices=MemberState.choices, default=MemberState.PENDING)
    error = models.CharField(max_length=500, blank=True)
    # {question key: what the persona said}, in the probe's order (panels.quality.PROBE_QUESTIONS).
    answers = models.JSONField(default=dict, blank=True)
    # {Big Five item key (A1, C4…): 1–6}, the items of panels/data/bfi_reference.json.
    items = models.JSONField(default=dict, blank=True)
    persona_check = models.ForeignKey(
        "personas.PersonaCheck", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    simulated = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["quality_check", "state"], name="panel_quality_member_state_idx")]
        constraints = [
            models.UniqueConstraint(fields=["quality_check", "position"], name="panel_quality_member_unique_position")
        ]

    def __str__(self) -> str:
        return f"{self.quality_check_id} #{self.position}"
