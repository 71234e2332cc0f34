"""Validation in the back office: the reference surveys uploaded and the validations run against them. A
reference's rows and a validation's scorecard are big JSON documents: lists never load them, and the pages
show a summary of them, never the JSON."""

from django.contrib import admin
from django.db.models.fields.json import KeyTransform
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from cohorta.admin_tools.display import OwnerLinkMixin, short_datetime, truncated
from validation.exports import number
from validation.models import Reference, Validation, ValidationState


class _ReadOnly:
    """Uploaded and mapped by their owners, run by the validation's steps: not edited by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _mapping_summary(mapping: dict | None) -> str:
    mapping = mapping or {}
    questions = mapping.get("questions") or []
    demographics = mapping.get("demographics") or []
    if not questions:
        return "Not mapped yet"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
        (
            (
                q.get("label") or q.get("column"),
                q.get("column"),
                q.get("kind"),
                " → ".join(str(v) for v in (q.get("scale") or q.get("options") or [])) or "—",
            )
            for q in questions
        ),
    )
    matched = ", ".join(f"{d.get('label') or d.get('dimension')} ({d.get('column')})" for d in demographics) or "none"
    return format_html(
        "<table><thead><tr><th>Question</th><th>Column</th><th>Kind</th><th>Values</th></tr></thead>"
        "<tbody>{}</tbody></table><p>Demographics: {} · Weight: {}</p>",
        rows,
        matched,
        mapping.get("weight") or "none",
    )


@admin.register(Reference)
class ReferenceAdmin(OwnerLinkMixin, _ReadOnly, admin.ModelAdmin):
    list_display = ["name", "owner_link", "file", "respondents", "mapped", "created"]
    list_select_related = ["owner"]
    search_fields = ["name", "filename", "owner__email"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "owner",
        "name",
        "filename",
        "size",
        "row_count",
        "columns",
        "mapping_summary",
        "created_at",
    )

    def get_queryset(self, request):
        # The rows and the suggestion stay in the database: “mapped” and the columns read one key each (the
        # page's mapping summary loads the mapping).
        return (
            super()
            .get_queryset(request)
            .defer("table", "suggested", "mapping")
            .annotate(
                mapped_questions=KeyTransform("questions", "mapping"), table_columns=KeyTransform("columns", "table")
            )
        )

    @admin.display(description="File")
    def file(self, reference) -> str:
        return truncated(reference.filename, 40)

    @admin.display(description="Respondents", ordering="row_count")
    def respondents(self, reference) -> str:
        return f"{reference.row_count:,}"

    @admin.display(description="Mapped", boolean=True)
    def mapped(self, reference) -> bool:
        return bool(reference.mapped_questions)

    @admin.display(description="Uploaded", ordering="created_at")
    def created(self, reference) -> str:
        return short_datetime(reference.created_at)

    @admin.display(description="Columns")
    def columns(self, reference) -> str:
        columns = [str(c) for c in reference.table_columns or []]
        shown = ", ".join(columns[:30]) + (f" (+{len(columns) - 30})" if len(columns) > 30 else "")
        return shown or "—"

    @admin.display(description="Mapping")
    def mapping_summary(self, reference) -> str:
        return _mapping_summary(reference.mapping)


@admin.register(Validation)
class ValidationAdmin(OwnerLinkMixin, _ReadOnly, admin.ModelAdmin):
    list_display = ["reference_label", "owner_link", "size", "state", "verdict", "created"]
    list_filter = ["state", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["reference_name", "owner__email"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "owner",
        "reference",
        "reference_name",
        "size",
        "seed",
        "state",
        "error",
        "panel_link",
        "run_link",
        "verdict_summary",
        "questions_summary",
        "mapping_summary",
        "created_at",
        "finished_at",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .defer("scorecard", "mapping")
            .annotate(verdict_passed=KeyTransform("passed", KeyTransform("verdict", "scorecard")))
        )

    @admin.display(description="Reference", ordering="reference_name")
    def reference_label(self, validation) -> str:
        return truncated(validation.reference_name, 50)

    @admin.display(description="Verdict")
    def verdict(self, validation) -> str:
        if validation.state != ValidationState.DONE:
            return "—"
        return "Passed" if validation.verdict_passed else "Not yet"

    @admin.display(description="Started", ordering="created_at")
    def created(self, validation) -> str:
        return short_datetime(validation.created_at)

    @admin.display(description="Matched panel")
    def panel_link(self, validation) -> str:
        if validation.panel_id is None:
            return "—"
        return format_html(
            '<a href="{}">Panel #{}</a>',
            reverse("admin:panels_panel_change", args=[validation.panel_id]),
            validation.panel_id,
        )

    @admin.display(description="Survey run")
    def run_link(self, validation) -> str:
        return f"Run #{validation.run_id}" if validation.run_id else "—"

    @admin.display(description="Verdict")
    def verdict_summary(self, validation) -> str:
        verdict = (validation.scorecard or {}).get("verdict")
        if not verdict:
            return "Not scored yet"
        checks = format_html_join(
            "",
            "<li>{} {}: {}</li>",
            (("✓" if c.get("passed") else "✗", c.get("label"), c.get("value")) for c in verdict.get("checks") or []),
        )
        return format_html(
            "<p><strong>{}</strong> {}</p><ul>{}</ul>",
            "Passed." if verdict.get("passed") else "Not yet.",
            verdict.get("summary", ""),
            checks,
        )

    @admin.display(description="Questions")
    def questions_summary(self, validation) -> str:
        questions = (validation.scorecard or {}).get("questions") or []
        if not questions:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    q.get("label"),
                    q.get("kind"),
                    f"{q.get('n_human', 0):,} / {q.get('n_synthetic', 0):,}",
                    number((q.get("measures") or {}).get("ks_similarity")),
                    number(q.get("normalised")),
                )
                for q in questions
            ),
        )
        return format_html(
            "<table><thead><tr><th>Question</th><th>Kind</th><th>Real / synthetic</th><th>KS similarity</th>"
            "<th>Normalised</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Mapping used")
    def mapping_summary(self, validation) -> str:
        return _mapping_summary(validation.mapping)
