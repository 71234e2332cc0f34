from django.contrib import admin
from django.db.models import Count

from cohorta.admin_tools.display import OwnerLinkMixin
from personas.models import Folder, GenerationBrief, GroundingSource, Persona, PersonaVersion


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
