"""Downloads of a session: the transcript (CSV, Markdown), the report (Markdown, Word) and everything (JSON).

    body, content_type, filename = export_build(focus_group=fg, kind="report-docx")

Callers check ownership first (``get_focus_group_for_user``): these functions trust the session they get.
A report export without an analysis raises ``ApplicationError`` 404 with a message that says so.
"""

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Q, Sum
from django.http import HttpResponse
from django.utils import timezone
from django.utils.text import slugify

from cohorta.errors import ApplicationError
from focusgroups.guide.services import guide_get
from focusgroups.markdown import md_cell, md_inline, md_text
from focusgroups.models import FocusGroup, Message, MessageStatus
from focusgroups.quality.results import session_quality
from focusgroups.report import analysis as analyses
from focusgroups.report import charts as report_charts
from llm.methods import method_rows, replay_original_scope, run_methods
from llm.replay import focus_group_scope
from usage.models import UsageEvent, UsageStatus

EXPORT_VERSION = 1
# Spreadsheet apps run cells that start with these as formulas: such cells get a leading apostrophe.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Characters XML 1.0 (and so a .docx) cannot hold.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
TRANSCRIPT_COLUMNS = ("sequence", "created_at", "role", "speaker", "persona_id", "status", "content")
STANCE_LABELS = {
    "enthusiastic": "Enthusiastic",
    "positive": "Positive",
    "neutral": "Neutral",
    "sceptical": "Sceptical",
    "negative": "Negative",
    analyses.NO_STANCE: "Unclear",
}


def _line(text) -> str:
    return " ".join(str(text or "").split())


def _slug(focus_group: FocusGroup) -> str:
    return slugify(focus_group.title)[:80].strip("-") or f"focus-group-{focus_group.pk}"


def _messages(focus_group: FocusGroup):
    return Message.objects.filter(focus_group=focus_group).select_related("reply_to").order_by("sequence")


def _need_analysis(focus_group: FocusGroup) -> dict:
    found = analyses.analysis_get(focus_group=focus_group)
    if found is None:
        raise ApplicationError(
            "This session has not been analysed yet, so there is no report to download. "
            "Analyse it first (Report tab, or POST …/analysis/).",
            code="not_found",
            status_code=404,
        )
    return found


# --- transcript ----------------------------------------------------------------------------


def csv_cell(value) -> str:
    """A cell as text, with formula injection neutralised."""
    if value is None:
        return ""
    value = str(value)
    if value.startswith(_FORMULA_PREFIXES):
        value = "'" + value
    return value


def transcript_csv(focus_group: FocusGroup) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(TRANSCRIPT_COLUMNS)
    for message in _messages(focus_group):
        writer.writerow(
            [
                message.sequence,
                message.created_at.isoformat(),
                message.role,
                csv_cell(message.speaker_name),
                message.persona_id or "",
                message.status,
                csv_cell(message.content),
            ]
        )
    return buffer.getvalue()


def _header(focus_group: FocusGroup, heading: str) -> list[str]:
    lines = [f"# {heading}: {md_inline(focus_group.title)}", "", f"**Objective:** {md_inline(focus_group.objective)}  "]
    if focus_group.concept.strip():
        lines.append(f"**Concept:** {md_inline(focus_group.concept)}  ")
    return lines


def transcript_markdown(focus_group: FocusGroup) -> str:
    participants = focus_group.participants.select_related("persona").order_by("position", "id")
    messages = list(_messages(focus_group))
    lines = _header(focus_group, "Transcript")
    people = ", ".join(
        md_inline(f"{p.persona.name} ({', '.join(str(x) for x in (p.persona.age, p.persona.occupation) if x)})")
        for p in participants
    )
    lines.append(f"**Participants:** {people or 'none'}  ")
    lines.append(
        f"**Status:** {focus_group.get_status_display()} · {len(messages)} message{'s' if len(messages) != 1 else ''}"
        f" · exported {timezone.now():%Y-%m-%d %H:%M} UTC"
    )
    if any(m.simulated for m in messages):
        lines += ["", "_Some answers were written by Cohorta's offline simulator, not a language model._"]
    for message in messages:
        when = f"{message.created_at:%Y-%m-%d %H:%M}"
        lines += ["", f"**#{message.sequence} · {md_inline(message.speaker_name) or message.get_role_display()}**"]
        lines[-1] += f" ({message.get_role_display().lower()}) · {when}"
        lines.append("")
        if message.status == MessageStatus.FAILED:
            lines.append(f"_No answer: {md_inline(message.error) or 'it failed'}._")
        elif message.status == MessageStatus.RETRIED:
            lines.append("_Failed; answered again on retry._")
        else:
            lines.append(md_text(message.content) or "_(empty)_")
    return "\n".join(lines).rstrip() + "\n"


# --- report --------------------------------------------------------------------------------


def _when(found: dict) -> str:
    finished = found.get("finished_at")
    return f"{timezone.localtime(finished):%Y-%m-%d %H:%M %Z}" if finished else ""


def _coverage(found: dict) -> str:
    transcript = found.get("transcript") or {}
    first, last = transcript.get("first_sequence"), transcript.get("last_sequence")
    return f"messages #{first}–#{last}" if first and last else "the transcript"


def report_markdown(focus_group: FocusGroup, found: dict | None = None) -> str:
    found = found or _need_analysis(focus_group)
    report = found.get("report") or {}
    themes = found.get("themes") or []
    lines = _header(focus_group, "Report")
    lines.append(f"**Analysed:** {_when(found)}, from {_coverage(found)}")
    if found.get("simulated"):
        lines += ["", "_Simulated: written by Cohorta's offline simulator, not a language model._"]
    lines += ["", "## Executive summary", "", md_text(report.get("executive_summary")) or "_None written._"]
    lines += _glance_markdown(focus_group, found)
    lines += ["", "## Key themes"]
    if not themes:
        lines += ["", "_No theme could be supported by quotes from the transcript._"]
    for number, theme in enumerate(themes, start=1):
        lines += ["", f"### {number}. {md_inline(theme['title'])} ({theme['sentiment'].capitalize()})", ""]
        lines.append(md_text(theme.get("description")))
        lines += ["", f"_Voiced by: {md_inline(', '.join(theme.get('personas') or []))}_"]
        for quote in theme.get("quotes") or []:
            lines += [
                "",
                f"> “{md_inline(quote['text'])}”  ",
                f"> — {md_inline(quote['speaker'])}, message #{quote['sequence']}{_quote_feeling(quote, theme)}",
            ]
    by_theme = report.get("findings_by") == "theme"
    lines += ["", "## Findings by theme" if by_theme else "## Findings by guide section"]
    for finding in report.get("findings") or []:
        lines += ["", f"### {md_inline(finding['section'])}", ""]
        lines.append(md_text(finding.get("summary")) or "_No finding was written for this part._")
        if finding.get("key_points"):
            lines.append("")
            lines += [f"- {md_inline(point)}" for point in finding["key_points"]]
    lines += ["", "## Participant stances", ""]
    if report.get("stances"):
        lines += ["| Participant | Stance | Summary |", "| --- | --- | --- |"]
        for row in report["stances"]:
            stance = STANCE_LABELS.get(row["stance"], row["stance"])
            lines.append(f"| {md_cell(row['persona'])} | {md_cell(stance)} | {md_cell(row['summary'])} |")
    else:
        lines.append("_No stances were recorded._")
    lines += _quality_markdown(focus_group)
    lines += ["", "## Recommendations", ""]
    lines += [f"{i}. {md_inline(text)}" for i, text in enumerate(report.get("recommendations") or [], start=1)] or [
        "_None._"
    ]
    lines += ["", "## Limitations", ""]
    lines += [f"- {md_inline(text)}" for text in report.get("limitations") or [analyses.SYNTHETIC_LIMITATION]]
    lines += _methods_markdown(focus_group)
    return "\n".join(lines).rstrip() + "\n"


def _methods_markdown(focus_group: FocusGroup) -> list[str]:
    rows = method_rows(run_methods(focus_group_scope(focus_group.pk)))
    lines = ["", "## Methods", ""]
    if not rows:
        return [*lines, "_No methods on record (the session ran before they were recorded)._"]
    lines += ["| | |", "| --- | --- |"]
    lines += [f"| {md_cell(row.label)} | {md_cell(row.value)} |" for row in rows]
    return lines


def quality_blocks(focus_group: FocusGroup) -> list[dict]:
    """The Quality section as headed paragraphs and tables of plain text: conformity, then the judge's scores."""
    found = session_quality(focus_group=focus_group)
    conf, judge = found["conformity"], found["judge"]
    blocks: list[dict] = []
    if conf is None:
        blocks.append(
            {
                "title": "Conformity",
                "paragraphs": [
                    "Not measured in this session (turn on “Measure conformity” in a session's settings before its "
                    "discussion starts)."
                ],
            }
        )
    else:
        paragraphs = [f"Key question, answered privately before and after the discussion: “{conf['question']}”."]
        paragraphs += conf["summary"]
        if conf["state"] == "done":
            paragraphs.append(conf["definition"])
        blocks.append(
            {
                "title": "Conformity",
                "paragraphs": paragraphs,
                "header": ("Answer", "Before", "After"),
                "rows": [
                    (
                        f"{row['option']}{' (initial majority)' if row['option'] == conf['majority'] else ''}",
                        str(row["before"]),
                        str(row["after"]),
                    )
                    for row in conf["counts"]
                ],
            }
        )

        def said(answer: dict) -> str:
            if answer["status"] == "done":
                return answer["choice"]
            return "failed" if answer["status"] == "failed" else "–"

        blocks.append(
            {
                "title": "Private answers per participant",
                "paragraphs": [],
                "header": ("Participant", "Before", "After", "Moved to the majority"),
                "rows": [
                    (row["name"], said(row["before"]), said(row["after"]), "yes" if row["toward_majority"] else "")
                    for row in conf["rows"]
                ],
            }
        )
    checked = [row for row in judge["participants"] if row["checked"]]
    if not checked:
        paragraphs = ["Not checked yet (“Check quality” on the report page, once the session has ended)."]
        blocks.append({"title": "In character and self-consistent", "paragraphs": paragraphs})
    else:
        blocks.append(
            {
                "title": "In character and self-consistent",
                "paragraphs": [
                    f"Scored 0–9 by a judge model on what each participant said in this session; below {judge['bar']} "
                    "is flagged."
                ],
                "header": ("Participant", "In character", "Self-consistent", "Flag"),
                "rows": [
                    (
                        row["name"],
                        "–" if row["failed"] else f"{row['adherence']}/9",
                        "–" if row["failed"] else f"{row['consistency']}/9",
                        f"Not scored: {row['error']}" if row["failed"] else ("below the bar" if row["flagged"] else ""),
                    )
                    for row in checked
                ],
            }
        )
    return blocks


def _quality_markdown(focus_group: FocusGroup) -> list[str]:
    lines = ["", "## Quality"]
    for block in quality_blocks(focus_group):
        lines += ["", f"### {md_inline(block['title'])}"]
        for paragraph in block["paragraphs"]:
            lines += ["", md_text(paragraph)]
        if block.get("rows"):
            lines += ["", "| " + " | ".join(block["header"]) + " |"]
            lines.append("| " + " | ".join("---" for _ in block["header"]) + " |")
            lines += ["| " + " | ".join(md_cell(cell) for cell in row) + " |" for row in block["rows"]]
    return lines


def _quote_feeling(quote: dict, theme: dict) -> str:
    return f" ({analyses.quote_sentiment(quote, theme.get('sentiment'))})"


def glance_tables(focus_group: FocusGroup, found: dict) -> list[dict]:
    """The report's pictures as tables (``report_charts``): title, note, header and rows of plain text each."""
    charts = report_charts.report_charts(focus_group=focus_group, found=found)
    through = found.get("through_sequence")
    voice = charts["voice"]
    return [
        {
            "title": "Sentiment per theme",
            "note": (
                "Each theme's supporting quotes by their own sentiment; Overall is the sentiment the analysis "
                "gave the theme."
            ),
            "header": ("Theme", "Overall", *charts["sentiment"]["labels"], "Quotes"),
            "rows": [
                (
                    f"{row['number']}. {row['title']}",
                    row["sentiment_label"],
                    *(str(count) for count in row["counts"]),
                    str(row["quotes"]),
                )
                for row in charts["sentiment"]["rows"]
            ],
        },
        {
            "title": "When each theme came up",
            "note": "The messages each theme's supporting quotes come from.",
            "header": ("Theme", "Messages", "Participants", "Message numbers"),
            "rows": [
                (
                    f"{row['number']}. {row['title']}",
                    str(row["messages"]),
                    str(row["participants"]),
                    ", ".join(f"#{sequence}" for sequence in row["sequences"]),
                )
                for row in charts["timeline"]["rows"]
            ],
        },
        {
            "title": "Share of voice",
            "note": (
                f"Answers and words per participant in the session"
                f"{f' up to message #{through}' if isinstance(through, int) and through else ''}, counted from the "
                f"transcript: {voice['answers']} answer{'s' if voice['answers'] != 1 else ''}, "
                f"{voice['words']} word{'s' if voice['words'] != 1 else ''}."
            ),
            "header": ("Participant", "Answers", "Words", "Share of words"),
            "rows": [
                (row["name"], str(row["answers"]), str(row["words"]), f"{row['words_share']}%") for row in voice["rows"]
            ],
        },
    ]


def _glance_markdown(focus_group: FocusGroup, found: dict) -> list[str]:
    lines = ["", "## At a glance"]
    for table in glance_tables(focus_group, found):
        lines += ["", f"### {table['title']}", "", md_text(table["note"]), ""]
        if not table["rows"]:
            lines.append("_Nothing to show._")
            continue
        lines.append("| " + " | ".join(table["header"]) + " |")
        lines.append("| " + " | ".join("---" for _ in table["header"]) + " |")
        lines += ["| " + " | ".join(md_cell(cell) for cell in row) + " |" for row in table["rows"]]
    return lines


def _x(text) -> str:
    return _NOT_XML.sub("", str(text or ""))


def report_docx(focus_group: FocusGroup, found: dict | None = None) -> bytes:
    # python-docx pulls in lxml: loaded only when someone downloads a Word report.
    from docx import Document
    from docx.shared import Pt

    found = found or _need_analysis(focus_group)
    report = found.get("report") or {}
    themes = found.get("themes") or []
    document = Document()
    document.core_properties.title = _x(f"Report: {focus_group.title}")[:255]
    document.core_properties.author = "Cohorta"
    document.add_heading(_x(f"Report: {focus_group.title}"), level=0)

    def labelled(label: str, text: str) -> None:
        paragraph = document.add_paragraph()
        paragraph.add_run(f"{label}: ").bold = True
        paragraph.add_run(_x(text))

    labelled("Date", _when(found) or f"{timezone.now():%Y-%m-%d}")
    labelled("Objective", _line(focus_group.objective))
    if focus_group.concept.strip():
        labelled("Concept", _line(focus_group.concept))
    labelled("Analysed", _coverage(found))
    if found.get("simulated"):
        document.add_paragraph().add_run(
            "Simulated: written by Cohorta's offline simulator, not a language model."
        ).italic = True

    document.add_heading("Executive summary", level=1)
    document.add_paragraph(_x(report.get("executive_summary")) or "None written.")

    document.add_heading("At a glance", level=1)
    for glance in glance_tables(focus_group, found):
        document.add_heading(_x(glance["title"]), level=2)
        document.add_paragraph(_x(glance["note"]))
        if not glance["rows"]:
            document.add_paragraph("Nothing to show.")
            continue
        grid = document.add_table(rows=1, cols=len(glance["header"]))
        grid.style = "Table Grid"
        for cell, title in zip(grid.rows[0].cells, glance["header"], strict=True):
            cell.text = ""
            cell.paragraphs[0].add_run(title).bold = True
        for values in glance["rows"]:
            for cell, value in zip(grid.add_row().cells, values, strict=True):
                cell.text = _x(value)
        for row in grid.rows:
            for cell in row.cells:
                for paragraph in cell.paragraphs:
                    for run in paragraph.runs:
                        run.font.size = Pt(10)

    document.add_heading("Key themes", level=1)
    if not themes:
        document.add_paragraph("No theme could be supported by quotes from the transcript.")
    for number, theme in enumerate(themes, start=1):
        document.add_heading(_x(f"{number}. {theme['title']}"), level=2)
        meta = document.add_paragraph()
        meta.add_run("Sentiment: ").bold = True
        meta.add_run(theme["sentiment"].capitalize())
        meta.add_run("   Voiced by: ").bold = True
        meta.add_run(_x(", ".join(theme.get("personas") or [])))
        document.add_paragraph(_x(theme.get("description")))
        for quote in theme.get("quotes") or []:
            document.add_paragraph(
                _x(
                    f"“{_line(quote['text'])}” — {quote['speaker']}, message #{quote['sequence']}"
                    f"{_quote_feeling(quote, theme)}"
                ),
                style="Quote",
            )

    by_theme = report.get("findings_by") == "theme"
    document.add_heading("Findings by theme" if by_theme else "Findings by guide section", level=1)
    for finding in report.get("findings") or []:
        document.add_heading(_x(finding["section"]), level=2)
        document.add_paragraph(_x(finding.get("summary")) or "No finding was written for this part.")
        for point in finding.get("key_points") or []:
            document.add_paragraph(_x(point), style="List Bullet")

    document.add_heading("Participant stances", level=1)
    stances = report.get("stances") or []
    table = document.add_table(rows=1, cols=3)
    table.style = "Table Grid"
    for cell, title in zip(table.rows[0].cells, ("Participant", "Stance", "Summary"), strict=True):
        cell.text = ""
        cell.paragraphs[0].add_run(title).bold = True
    for row in stances:
        cells = table.add_row().cells
        cells[0].text = _x(row["persona"])
        cells[1].text = STANCE_LABELS.get(row["stance"], row["stance"])
        cells[2].text = _x(row["summary"])
    for row in table.rows:
        for cell in row.cells:
            for paragraph in cell.paragraphs:
                for run in paragraph.runs:
                    run.font.size = Pt(10)

    document.add_heading("Quality", level=1)
    for block in quality_blocks(focus_group):
        document.add_heading(_x(block["title"]), level=2)
        for paragraph in block["paragraphs"]:
            document.add_paragraph(_x(paragraph))
        if block.get("rows"):
            grid = document.add_table(rows=1, cols=len(block["header"]))
            grid.style = "Table Grid"
            for cell, title in zip(grid.rows[0].cells, block["header"], strict=True):
                cell.text = ""
                cell.paragraphs[0].add_run(title).bold = True
            for values in block["rows"]:
                for cell, value in zip(grid.add_row().cells, values, strict=True):
                    cell.text = _x(value)

    document.add_heading("Recommendations", level=1)
    for text in report.get("recommendations") or []:
        document.add_paragraph(_x(text), style="List Number")
    document.add_heading("Limitations", level=1)
    for text in report.get("limitations") or [analyses.SYNTHETIC_LIMITATION]:
        document.add_paragraph(_x(text), style="List Bullet")

    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- everything ----------------------------------------------------------------------------


def usage_summary(focus_group: FocusGroup) -> dict:
    """Calls, tokens and cost of every AI call made for this session (from the usage events)."""

    events = UsageEvent.objects.filter(focus_group_id=focus_group.pk)
    sums = {
        "input_tokens": Sum("input_tokens"),
        "cached_input_tokens": Sum("cached_input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "reasoning_tokens": Sum("reasoning_tokens"),
        "cost_usd": Sum("cost_usd"),
    }
    total = events.aggregate(calls=Count("pk"), failed_calls=Count("pk", filter=~Q(status=UsageStatus.OK)), **sums)
    by_feature = events.values("feature").annotate(calls=Count("pk"), **sums).order_by("feature")

    def clean(row: dict) -> dict:
        row = {key: (value or 0) for key, value in row.items()}
        row["total_tokens"] = row["input_tokens"] + row["output_tokens"]
        row["cost_usd"] = str(row["cost_usd"])
        return row

    return {**clean(total), "by_feature": [clean(dict(row)) for row in by_feature]}


def _asset(asset) -> dict:
    return {
        "id": asset.pk,
        "kind": asset.kind,
        "filename": asset.filename,
        "content_type": asset.content_type,
        "size": asset.size,
        "text_chars": len(asset.text or ""),
        "description": asset.description,
        "warnings": asset.warnings,
        "created_at": asset.created_at,
    }


def everything(focus_group: FocusGroup) -> dict:

    participants = focus_group.participants.select_related("persona", "persona__folder").order_by("position", "id")
    guide = guide_get(focus_group=focus_group)
    found = analyses.analysis_get(focus_group=focus_group)
    return {
        "format": "cohorta.focus_group",
        "version": EXPORT_VERSION,
        "exported_at": timezone.now(),
        "session": {
            "id": focus_group.pk,
            "title": focus_group.title,
            "objective": focus_group.objective,
            "concept": focus_group.concept,
            "status": focus_group.status,
            "archived": focus_group.archived,
            "cost_cap_usd": focus_group.cost_cap_usd,
            "created_at": focus_group.created_at,
            "ended_at": focus_group.ended_at,
            "last_sequence": focus_group.last_sequence,
            "summary": focus_group.summary,
        },
        "participants": [
            {
                "position": p.position,
                "persona_id": p.persona_id,
                "added_at": p.added_at,
                "profile": {**p.persona.profile_data(), "tags": list(p.persona.tags or [])},
                "simulated": p.persona.simulated,
            }
            for p in participants
        ],
        "guide": {"data": guide.data, "simulated": guide.simulated, "updated_at": guide.updated_at} if guide else None,
        "assets": [_asset(asset) for asset in focus_group.assets.all()],
        "messages": [
            {
                "sequence": m.sequence,
                "created_at": m.created_at,
                "role": m.role,
                "speaker": m.speaker_name,
                "persona_id": m.persona_id,
                "status": m.status,
                "content": m.content,
                "error": m.error,
                "mentions": m.mentions,
                "reply_to_sequence": m.reply_to.sequence if m.reply_to_id and m.reply_to else None,
                "simulated": m.simulated,
            }
            for m in _messages(focus_group)
        ],
        "analysis": (
            {
                "job_id": found["job_id"],
                "finished_at": found["finished_at"],
                "simulated": found.get("simulated", False),
                "model": found.get("model", ""),
                "through_sequence": found.get("through_sequence"),
                "transcript": found.get("transcript"),
                "dropped_quotes": found.get("dropped_quotes", 0),
                "dropped_themes": found.get("dropped_themes", 0),
            }
            if found
            else None
        ),
        "themes": found["themes"] if found else None,
        "report": found.get("report") if found else None,
        "quality": session_quality(focus_group=focus_group),
        "usage": usage_summary(focus_group),
        # How the session was made (model snapshots per alias, prompt template hashes, seeds), and the
        # session it replays, if it is an exact replay.
        "methods": run_methods(focus_group_scope(focus_group.pk)),
        "replay_of": replay_original_scope(focus_group_scope(focus_group.pk)),
    }


def everything_json(focus_group: FocusGroup) -> str:
    return json.dumps(everything(focus_group), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)


# --- the downloads -------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    label: str
    filename: str  # after the session's slug
    content_type: str
    build: Callable[[FocusGroup], str | bytes]
    needs_analysis: bool = False


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EXPORTS: dict[str, Export] = {
    "transcript-csv": Export("Transcript (CSV)", "transcript.csv", "text/csv; charset=utf-8", transcript_csv),
    "transcript-md": Export(
        "Transcript (Markdown)", "transcript.md", "text/markdown; charset=utf-8", transcript_markdown
    ),
    "report-md": Export("Report (Markdown)", "report.md", "text/markdown; charset=utf-8", report_markdown, True),
    "report-docx": Export("Report (Word)", "report.docx", DOCX, report_docx, True),
    "json": Export("Everything (JSON)", "export.json", "application/json; charset=utf-8", everything_json),
}


def export_build(*, focus_group: FocusGroup, kind: str) -> tuple[str | bytes, str, str]:
    """(body, content type, filename) of one download; ApplicationError 404 for an unknown kind or a
    report export before any analysis."""
    export = EXPORTS.get(kind)
    if export is None:
        raise ApplicationError(
            f"Unknown export {kind!r}: use one of {', '.join(EXPORTS)}.", code="not_found", status_code=404
        )
    return export.build(focus_group), export.content_type, f"{_slug(focus_group)}-{export.filename}"


def export_response(*, focus_group: FocusGroup, kind: str) -> HttpResponse:
    body, content_type, filename = export_build(focus_group=focus_group, kind=kind)
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
