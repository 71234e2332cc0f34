from django.contrib import admin
from django.db.models import Count, Q

from cohorta.admin_tools.display import OwnerLinkMixin, user_admin_link
from cohorta.core.models import get_app_settings
from personas.models import Folder, GenerationBrief, GroundingSource, Persona, PersonaCheck, PersonaVersion


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class PersonaVersionInline(ReadOnlyInline):
    model = PersonaVersion
    fields = readonly_fields = ("number", "source", "note", "created_at")
    ordering = ["-number"]


@admin.register(Persona)
class PersonaAdmin(OwnerLinkMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "owner_link",
        "age",
        "occupation",
        "location",
        "source",
        "simulated",
        "version",
        "created_at",
    ]
    list_filter = ["source", "simulated", "tech_savviness", "created_at"]
    search_fields = ["name", "occupation", "location", "owner__email"]
    list_select_related = ["owner", "folder"]
    raw_id_fields = ["owner", "folder", "brief"]
    readonly_fields = ["version", "created_at", "updated_at"]
    date_hierarchy = "created_at"
    inlines = [PersonaVersionInline]
    fieldsets = [
        (None, {"fields": ["owner", "folder", "tags"]}),
        (
            "Basic profile",
            {"fields": ["name", "age", "gender", "location", "occupation", "income_bracket", "education", "household"]},
        ),
        ("Personality", {"fields": ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]}),
        (
            "Detailed profile",
            {
                "fields": [
                    "values",
                    "interests",
                    "goals",
                    "frustrations",
                    "brand_affinities",
                    "buying_behaviour",
                    "media_habits",
                    "tech_savviness",
                    "backstory",
                    "speaking_style",
                    "quote",
                ]
            },
        ),
        (
            "Provenance",
            {"fields": ["source", "simulated", "brief", "grounding", "version", "created_at", "updated_at"]},
        ),
    ]


@admin.register(Folder)
class FolderAdmin(OwnerLinkMixin, admin.ModelAdmin):
    list_display = ["name", "owner_link", "persona_count", "created_at"]
    search_fields = ["name", "owner__email"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]

    def get_queryset(self, request):
        # One grouped COUNT in the list query rather than one query per row.
        return super().get_queryset(request).annotate(persona_count=Count("personas"))

    @admin.display(description="Personas", ordering="persona_count")
    def persona_count(self, folder) -> int:
        return folder.persona_count


@admin.register(PersonaVersion)
class PersonaVersionAdmin(admin.ModelAdmin):
    """History is evidence: read-only."""

    list_display = ["persona", "number", "source", "note", "created_at"]
    list_filter = ["source", "created_at"]
    search_fields = ["persona__name", "persona__owner__email", "note"]
    list_select_related = ["persona"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class GroundingSourceInline(ReadOnlyInline):
    model = GroundingSource
    fields = readonly_fields = ("filename", "kind", "size", "truncated", "created_at")


@admin.register(GenerationBrief)
class GenerationBriefAdmin(OwnerLinkMixin, admin.ModelAdmin):
    list_display = ["short_description", "owner_link", "count", "folder", "job", "created_at"]
    search_fields = ["description", "owner__email"]
    list_select_related = ["owner", "folder", "job"]
    raw_id_fields = ["owner", "folder", "job"]
    date_hierarchy = "created_at"
    inlines = [GroundingSourceInline]

    @admin.display(description="Description")
    def short_description(self, brief) -> str:
        return brief.description[:80]


@admin.register(GroundingSource)
class GroundingSourceAdmin(admin.ModelAdmin):
    """What was extracted from an uploaded document: read-only."""

    list_display = ["filename", "kind", "size", "truncated", "brief", "created_at"]
    list_filter = ["kind", "truncated"]
    search_fields = ["filename", "brief__owner__email"]
    list_select_related = ["brief"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class CheckOutcomeFilter(admin.SimpleListFilter):
    """Flagged: scored under the quality bar as it is now set (App settings); failed: the judge gave no scores."""

    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        bar = get_app_settings().quality_judge_bar
        return [("flagged", f"Below the bar ({bar})"), ("passed", "At or above the bar"), ("failed", "Not scored")]

    def queryset(self, request, queryset):
        bar = get_app_settings().quality_judge_bar
        below = Q(adherence__lt=bar) | Q(consistency__lt=bar)
        scored = Q(adherence__isnull=False, consistency__isnull=False)
        if self.value() == "flagged":
            return queryset.filter(scored & below)
        if self.value() == "passed":
            return queryset.filter(scored).exclude(below)
        if self.value() == "failed":
            return queryset.exclude(scored)
        return queryset


@admin.register(PersonaCheck)
class PersonaCheckAdmin(admin.ModelAdmin):
    """The quality judge's verdicts are evidence: read-only."""

    list_display = [
        "persona",
        "owner_email",
        "adherence",
        "consistency",
        "is_flagged",
        "source_label",
        "judge_model",
        "simulated",
        "created_at",
    ]
    list_filter = [CheckOutcomeFilter, "source_kind", "simulated", "judge_model", "created_at"]
    search_fields = ["persona__name", "persona__owner__email", "source_label"]
    list_select_related = ["persona", "persona__owner"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Owner", ordering="persona__owner__email")
    def owner_email(self, check) -> str:
        return user_admin_link(check.persona.owner_id, check.persona.owner.email)

    @admin.display(description="Below the bar", boolean=True)
    def is_flagged(self, check) -> bool | None:
        return None if check.failed else check.flagged
