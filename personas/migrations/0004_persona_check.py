import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("personas", "0003_persona_core"),
    ]

    operations = [
        migrations.CreateModel(
            name="PersonaCheck",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "adherence",
                    models.PositiveSmallIntegerField(
                        blank=True,
                        null=True,
                        validators=[django.core.validators.MaxValueValidator(9)],
                        verbose_name="in-character adherence (0–9)",
                    ),
                ),
                (
                    "consistency",
                    models.PositiveSmallIntegerField(
                        blank=True,
                        null=True,
                        validators=[django.core.validators.MaxValueValidator(9)],
                        verbose_name="self-consistency (0–9)",
                    ),
                ),
                ("adherence_reason", models.TextField(blank=True)),
                ("consistency_reason", models.TextField(blank=True)),
                (
                    "judge_model",
                    models.CharField(blank=True, help_text="The model that judged, as it was called.", max_length=120),
                ),
                (
                    "simulated",
                    models.BooleanField(default=False, help_text="Judged by the offline simulator, not a real model."),
                ),
                (
                    "source_kind",
                    models.CharField(
                        choices=[
                            ("panel", "Panel quality check"),
                            ("session", "Focus group"),
                            ("survey", "Survey"),
                            ("probe", "Probe interview"),
                        ],
                        max_length=12,
                    ),
                ),
                ("source_id", models.PositiveBigIntegerField(blank=True, null=True)),
                (
                    "source_label",
                    models.CharField(blank=True, help_text="e.g. “Panel: Ohio voters”.", max_length=200),
                ),
                (
                    "evidence_count",
                    models.PositiveSmallIntegerField(default=0, help_text="How many answers the judge read."),
                ),
                (
                    "error",
                    models.CharField(
                        blank=True, help_text="Why the check failed; blank when it was scored.", max_length=500
                    ),
                ),
                ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                (
                    "persona",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="checks", to="personas.persona"
                    ),
                ),
            ],
            options={
                "verbose_name": "persona quality check",
                "ordering": ["-created_at", "-id"],
                "indexes": [models.Index(fields=["persona", "-created_at"], name="persona_check_latest_idx")],
            },
        ),
    ]
