"""Back office for focus groups: sessions (with participants), and read-only assets, guides and messages.

Every focus-group model is registered here, once.
"""

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import Truncator

from cohorta.admin_tools.display import OwnerLinkMixin
from focusgroups.models import Asset, DiscussionGuide, FocusGroup, Message, Participant
from focusgroups.selectors import with_counts
from usage.selectors import focus_group_cost_subquery


class ReadOnlyAdminMixin:
    """View-only: rows are written by the product (the discussion engine, jobs), not by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ParticipantInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Participant
    extra = 0
    can_delete = False
    show_change_link = True
    fields = readonly_fields = ("position", "persona", "added_at")
    ordering = ["position", "id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("persona")


@admin.register(FocusGroup)
class FocusGroupAdmin(OwnerLinkMixin, admin.ModelAdmin):
    list_display = [
        "title",
        "owner_link",
        "status",
        "archived",
        "participant_count",
        "message_count",
        "llm_cost",
        "cost_cap_usd",
        "created_at",
    ]
    list_filter = ["status", "archived", "created_at"]
    search_fields = ["title", "objective", "owner__email"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    date_hierarchy = "created_at"
    readonly_fields = ["last_sequence", "summary", "summary_through", "created_at", "updated_at", "ended_at"]
    inlines = [ParticipantInline]
    fieldsets = [
        (None, {"fields": ["owner", "title", "objective", "concept"]}),
        ("State", {"fields": ["status", "archived", "cost_cap_usd", "ended_at"]}),
        ("Rolling context", {"fields": ["last_sequence", "summary", "summary_through"], "classes": ["collapse"]}),
        ("Timestamps", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        # Two correlated COUNT subqueries in the list query (not a join: 12 participants × N messages would
        # multiply rows), plus the participants prefetch the inline and the change form use.
        # The LLM cost is one more correlated SUM, over usage_fg_created_idx.
        return with_counts(super().get_queryset(request)).annotate(llm_cost_usd=focus_group_cost_subquery())

    @admin.display(description="Participants", ordering="participant_count")
    def participant_count(self, focus_group) -> int:
        return focus_group.participant_count

    @admin.display(description="Messages", ordering="message_count")
    def message_count(self, focus_group) -> int:
        return focus_group.message_count

    @admin.display(description="LLM cost (USD)", ordering="llm_cost_usd")
    def llm_cost(self, focus_group) -> str:
        cost = getattr(focus_group, "llm_cost_usd", None)
        return "—" if cost is None else f"${cost:,.4f}"


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ["persona", "focus_group", "position", "added_at"]
    search_fields = ["persona__name", "focus_group__title", "focus_group__owner__email"]
    list_select_related = ["persona", "focus_group"]
    raw_id_fields = ["focus_group", "persona"]
    ordering = ["focus_group", "position", "id"]


@admin.register(Asset)
class AssetAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["filename", "focus_group", "kind", "content_type", "size", "created_at"]
    list_filter = ["kind", "created_at"]
    search_fields = ["filename", "focus_group__title", "focus_group__owner__email"]
    list_select_related = ["focus_group"]
    raw_id_fields = ["focus_group", "job"]


@admin.register(DiscussionGuide)
class DiscussionGuideAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["focus_group", "section_count", "simulated", "updated_at"]
    list_filter = ["simulated"]
    search_fields = ["focus_group__title", "focus_group__owner__email"]
    list_select_related = ["focus_group"]
    fields = readonly_fields = ("focus_group", "simulated", "job", "updated_at", "data_pretty")

    @admin.display(description="Sections")
    def section_count(self, guide) -> int:
        sections = (guide.data or {}).get("sections") if isinstance(guide.data, dict) else None
        return len(sections) if isinstance(sections, list) else 0

    @admin.display(description="Data")
    def data_pretty(self, guide) -> str:
        text = json.dumps(guide.data, indent=2, ensure_ascii=False)
        return format_html('<pre style="white-space: pre-wrap; max-width: 60rem">{}</pre>', text)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["focus_group", "sequence", "role", "speaker_name", "short_content", "status", "created_at"]
    list_display_links = ["sequence"]
    list_filter = ["role", "status", "simulated"]
    search_fields = ["content", "speaker_name", "focus_group__title", "focus_group__owner__email"]
    list_select_related = ["focus_group"]
    ordering = ["focus_group", "sequence"]
    raw_id_fields = ["focus_group", "persona", "reply_to", "retry_of"]

    @admin.display(description="Content")
    def short_content(self, message) -> str:
        return Truncator(message.content).chars(90)
