from django.contrib import admin

from cohorta.audit.admin_tools import AuditedAdminMixin
from cohorta.audit.models import AuditEntry
from cohorta.core.models import AppSettings


@admin.register(AppSettings)
class AppSettingsAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Credit costs, trial credits and quotas: every change is audit-logged with before/after values."""

    audit_action = AuditEntry.Action.SETTINGS_CHANGE
    fieldsets = (
        (
            "Credits",
            {
                "fields": (
                    "trial_credits",
                    "persona_credit_cost",
                    "persona_modify_credit_cost",
                    "session_run_credit_cost",
                )
            },
        ),
        (
            "Autonomous mode",
            {
                "fields": (
                    "autonomous_failed_turns_to_pause",
                    "autonomous_retry_seconds",
                    "autonomous_refund_min_answers",
                )
            },
        ),
        ("Live sessions", {"fields": ("live_themes_every_turns",)}),
        (
            "Surveys",
            {
                "fields": (
                    "survey_credits_per_block",
                    "survey_questions_per_block",
                    "survey_parallelism",
                    "survey_max_panel",
                )
            },
        ),
        ("Panels", {"fields": ("panel_light_credit_cost", "panel_parallelism", "panel_max_size")}),
        ("Quality checks", {"fields": ("quality_judge_bar", "quality_credits_per_persona")}),
        ("Exact replay", {"fields": ("llm_cache_days",)}),
        ("LLM cost quotas", {"fields": ("default_monthly_quota_usd", "quota_warning_ratio")}),
        ("Audit", {"fields": ("change_reason",)}),
    )

    def has_add_permission(self, request) -> bool:
        return not AppSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
