"""The report's pictures and their tables: computed here from the analysis and from our own messages, never
asked of the model.

    charts = report_charts(focus_group=fg, found=analysis.analysis_get(focus_group=fg))

- ``sentiment``: per theme, its sentiment and its supporting quotes counted by each quote's own sentiment
  (the sentiment mix; a quote stored without one counts as its theme's);
- ``voice``: share of voice per participant, from the session's complete answers up to the message the
  analysis read through (``through_sequence``): answers, words, and each as a share of the whole;
- ``timeline``: per theme, which messages its quotes come from (how often and when it came up), each
  with its quote's sentiment.

The Report page draws them with Chart.js (``static/js/report-charts.js``, from ``charts_json``) over tables
that print and serve readers without the picture; the Word and Markdown downloads carry the tables.
"""

from typing import Any

from focusgroups.models import FocusGroup, Message, MessageRole, MessageStatus
from focusgroups.report import analysis

SENTIMENT_LABELS = {"positive": "Positive", "mixed": "Mixed", "negative": "Negative"}
# A quote's sentiment, in the order the bars stack: from positive to negative.
QUOTE_SENTIMENT_LABELS = {"positive": "Positive", "neutral": "Neutral", "mixed": "Mixed", "negative": "Negative"}
# The report's badge colours (Bootstrap success / secondary / warning / danger), so a chart reads like the
# theme cards.
SENTIMENT_COLOURS = {"positive": "#198754", "neutral": "#6c757d", "mixed": "#e0a800", "negative": "#dc3545"}


def _share(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def _theme_sentiment(theme: dict) -> str:
    sentiment = theme.get("sentiment")
    return sentiment if isinstance(sentiment, str) and sentiment in SENTIMENT_LABELS else "mixed"


def _supporting(theme: dict) -> dict[int, dict]:
    """The theme's quotes by message, the first quote of a message counting (a theme quotes a message once)."""
    found: dict[int, dict] = {}
    for quote in theme.get("quotes") or []:
        sequence = quote.get("sequence") if isinstance(quote, dict) else None
        if isinstance(sequence, int) and not isinstance(sequence, bool):
            found.setdefault(sequence, quote)
    return found


def sentiment_by_theme(themes: list[dict]) -> dict:
    """One row per theme (in the report's order): its own sentiment and its supporting quotes by theirs
    (``mix``: a count per quote sentiment, ``counts``: the same in ``QUOTE_SENTIMENT_LABELS`` order); and the
    totals per quote sentiment, with how many themes have that sentiment themselves."""
    rows: list[dict[str, Any]] = []
    for number, theme in enumerate(themes, start=1):
        sentiment = _theme_sentiment(theme)
        mix = dict.fromkeys(QUOTE_SENTIMENT_LABELS, 0)
        for quote in _supporting(theme).values():
            mix[analysis.quote_sentiment(quote, sentiment)] += 1
        rows.append(
            {
                "number": number,
                "title": theme.get("title") or "Untitled theme",
                "sentiment": sentiment,
                "sentiment_label": SENTIMENT_LABELS[sentiment],
                "mix": mix,
                "counts": list(mix.values()),
                "quotes": sum(mix.values()),
                "participants": len(theme.get("personas") or []),
            }
        )
    totals = [
        {
            "sentiment": key,
            "label": label,
            "themes": sum(1 for row in rows if row["sentiment"] == key),
            "quotes": sum(row["mix"][key] for row in rows),
        }
        for key, label in QUOTE_SENTIMENT_LABELS.items()
    ]
    return {"rows": rows, "totals": totals, "labels": list(QUOTE_SENTIMENT_LABELS.values())}


def share_of_voice(*, focus_group: FocusGroup, through_sequence: int | None = None) -> dict:
    """Answers and words per participant: every participant of the panel in its order (silent ones with 0),
    then anyone who answered and has left the panel since. Complete, non-empty answers only, up to
    ``through_sequence`` when given."""
    messages = Message.objects.filter(
        focus_group=focus_group, role=MessageRole.PERSONA, status=MessageStatus.COMPLETE
    ).exclude(content="")
    if through_sequence is not None:
        messages = messages.filter(sequence__lte=through_sequence)
    people: dict = {}
    for speaker in analysis.session_participants(focus_group=focus_group):
        people[speaker.persona_id] = {"persona_id": speaker.persona_id, "name": speaker.name, "answers": 0, "words": 0}
    for persona_id, name, content in messages.order_by("sequence").values_list("persona_id", "speaker_name", "content"):
        # A deleted persona's answers keep their speaker's name: grouped by it.
        key = persona_id if persona_id is not None else f"name:{name}"
        row = people.setdefault(
            key, {"persona_id": persona_id, "name": name or "Former participant", "answers": 0, "words": 0}
        )
        row["answers"] += 1
        row["words"] += len(content.split())
    rows = list(people.values())
    answers = sum(row["answers"] for row in rows)
    words = sum(row["words"] for row in rows)
    for row in rows:
        row["answers_share"] = _share(row["answers"], answers)
        row["words_share"] = _share(row["words"], words)
    return {"rows": rows, "answers": answers, "words": words}


def theme_timeline(themes: list[dict], *, first_sequence: int = 0, last_sequence: int = 0) -> dict:
    """Per theme: the messages its supporting quotes come from, in order, who said them, first and last."""
    rows = []
    for number, theme in enumerate(themes, start=1):
        sentiment = _theme_sentiment(theme)
        points = _supporting(theme)
        sequences = sorted(points)
        speakers = [points[s].get("speaker") or "" for s in sequences]
        rows.append(
            {
                "number": number,
                "title": theme.get("title") or "Untitled theme",
                "sentiment": sentiment,
                "messages": len(sequences),
                "participants": len({name for name in speakers if name}),
                "sequences": sequences,
                "speakers": speakers,
                "sentiments": [analysis.quote_sentiment(points[s], sentiment) for s in sequences],
                "first": sequences[0] if sequences else None,
                "last": sequences[-1] if sequences else None,
            }
        )
    return {"rows": rows, "first_sequence": first_sequence, "last_sequence": last_sequence}


def report_charts(*, focus_group: FocusGroup, found: dict) -> dict:
    """The three charts' numbers for an analysis (``analysis.analysis_get``)."""
    themes = found.get("themes") or []
    transcript = found.get("transcript") or {}
    through = found.get("through_sequence")
    return {
        "sentiment": sentiment_by_theme(themes),
        "voice": share_of_voice(
            focus_group=focus_group, through_sequence=through if isinstance(through, int) else None
        ),
        "timeline": theme_timeline(
            themes,
            first_sequence=transcript.get("first_sequence") or 0,
            last_sequence=transcript.get("last_sequence") or 0,
        ),
    }


def charts_json(charts: dict) -> dict:
    """What ``static/js/report-charts.js`` draws (embedded with ``json_script``)."""
    sentiment, voice, timeline = charts["sentiment"], charts["voice"], charts["timeline"]
    labels = [f"{row['number']}. {row['title']}" for row in sentiment["rows"]]
    return {
        "sentiment": {
            "labels": labels,
            "overall": [row["sentiment_label"] for row in sentiment["rows"]],
            # One stacked segment per quote sentiment that some theme has.
            "datasets": [
                {
                    "label": label,
                    "color": SENTIMENT_COLOURS[key],
                    "data": [row["mix"][key] for row in sentiment["rows"]],
                }
                for key, label in QUOTE_SENTIMENT_LABELS.items()
                if any(row["mix"][key] for row in sentiment["rows"])
            ],
        },
        "voice": {
            "labels": [row["name"] for row in voice["rows"]],
            "answers": [row["answers"] for row in voice["rows"]],
            "words": [row["words"] for row in voice["rows"]],
            "answers_share": [row["answers_share"] for row in voice["rows"]],
            "words_share": [row["words_share"] for row in voice["rows"]],
        },
        "timeline": {
            "labels": labels,
            "min": timeline["first_sequence"],
            "max": timeline["last_sequence"],
            "points": [
                {
                    "x": sequence,
                    "y": index,
                    "speaker": speaker,
                    "sentiment": QUOTE_SENTIMENT_LABELS[quote_sentiment],
                    "color": SENTIMENT_COLOURS[quote_sentiment],
                }
                for index, row in enumerate(timeline["rows"])
                for sequence, speaker, quote_sentiment in zip(
                    row["sequences"], row["speakers"], row["sentiments"], strict=True
                )
            ],
        },
    }
