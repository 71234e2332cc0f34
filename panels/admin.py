"""Panels in the back office: who built what, from which population, and how far its personas got.
The stored populations are big JSON documents: lists show a summary of them, never the JSON."""

from django.contrib import admin
from django.db.models import Count, Q
from django.db.models.fields.json import KT
from django.utils.html import format_html, format_html_join

from cohorta.admin_tools.display import OwnerLinkMixin, short_datetime, truncated
from panels.models import MemberState, MicrodataFile, Panel, PopulationFile

MEMBERS_SHOWN = 20


class _ReadOnly:
    """Panels and their members are written by the builder and the runner, not by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _dimensions(data) -> str:
    """“age, gender, education (+4)” from a stored population's JSON."""
    dimensions = (data or {}).get("dimensions") or []
    names = [str(item.get("label") or item.get("key") or "") for item in dimensions if isinstance(item, dict)]
    if len(names) > 3:
        return f"{', '.join(names[:3])} (+{len(names) - 3})"
    return ", ".join(names) or "—"


@admin.register(Panel)
class PanelAdmin(OwnerLinkMixin, _ReadOnly, admin.ModelAdmin):
    list_display = ["name", "owner_link", "size", "depth", "target_kind", "target_name", "state", "written", "created"]
    list_filter = ["depth", "target_kind", "created_at"]
    search_fields = ["name", "owner__email"]
    list_select_related = ["owner", "job"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "owner",
        "name",
        "size",
        "depth",
        "seed",
        "target_kind",
        "target_key",
        "population_file",
        "microdata_file",
        "target_summary",
        "quotas",
        "description",
        "unit_cost",
        "folder",
        "job",
        "stop_reason",
        "created_at",
        "members_summary",
    )

    def get_queryset(self, request):
        # One grouped COUNT in the list query rather than one query per row.
        return (
            super()
            .get_queryset(request)
            .defer("target")
            .annotate(
                target_name_text=KT("target__name"),
                written_count=Count("members", filter=Q(members__state=MemberState.DONE)),
            )
        )

    @admin.display(description="Target")
    def target_name(self, panel) -> str:
        return panel.target_name_text or "—"

    @admin.display(description="State")
    def state(self, panel) -> str:
        if panel.job is None:
            return "—"
        return panel.job.get_state_display()

    @admin.display(description="Written", ordering="written_count")
    def written(self, panel) -> str:
        return f"{panel.written_count:,} / {panel.size:,}"

    @admin.display(description="Created", ordering="created_at")
    def created(self, panel) -> str:
        return short_datetime(panel.created_at)

    @admin.display(description="Target population")
    def target_summary(self, panel) -> str:
        target = panel.target or {}
        return format_html("{} · {}", target.get("name") or "—", _dimensions(target))

    @admin.display(description="Members")
    def members_summary(self, panel) -> str:
        """Counts per state and the first members (a panel has up to 1,000: an inline would be a long page)."""
        counts = dict(panel.members.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
        labels = dict(MemberState.choices)
        summary = ", ".join(f"{labels.get(state, state)}: {n:,}" for state, n in sorted(counts.items())) or "none"
        first = panel.members.select_related("persona").order_by("position")[:MEMBERS_SHOWN]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    member.position + 1,
                    labels.get(member.state, member.state),
                    ", ".join(f"{key}: {value}" for key, value in (member.core or {}).items()),
                    member.persona.name if member.persona else member.error or "—",
                )
                for member in first
            ),
        )
        return format_html(
            "<p>{}</p><table><thead><tr><th>#</th><th>State</th><th>Sampled core</th><th>Persona</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            summary,
            rows,
        )


class _UploadAdmin(OwnerLinkMixin, admin.ModelAdmin):
    list_select_related = ["owner"]
    search_fields = ["name", "filename", "owner__email"]
    date_hierarchy = "created_at"
    raw_id_fields = ["owner"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("data")

    def has_add_permission(self, request) -> bool:
        return False  # uploaded by their owners, checked by the panels' readers

    @admin.display(description="Dimensions")
    def dimensions(self, obj) -> str:
        return _dimensions(obj.data)

    @admin.display(description="File")
    def file(self, obj) -> str:
        return truncated(obj.filename, 40)

    @admin.display(description="Uploaded", ordering="created_at")
    def created(self, obj) -> str:
        return short_datetime(obj.created_at)


@admin.register(PopulationFile)
class PopulationFileAdmin(_UploadAdmin):
    list_display = ["name", "owner_link", "file", "created"]
    fields = ["owner", "name", "filename", "dimensions", "created_at"]
    readonly_fields = ["filename", "dimensions", "created_at"]


@admin.register(MicrodataFile)
class MicrodataFileAdmin(_UploadAdmin):
    list_display = ["name", "owner_link", "file", "respondents", "created"]
    fields = ["owner", "name", "filename", "row_count", "dimensions", "created_at"]
    readonly_fields = ["filename", "row_count", "dimensions", "created_at"]

    @admin.display(description="Respondents", ordering="row_count")
    def respondents(self, obj) -> str:
        return f"{obj.row_count:,}"
