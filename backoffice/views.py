"""Analytics pages inside the admin. Staff only: the site wraps each in ``admin_view``.

Each page is a period form, a table (also downloadable as CSV with
``?export=csv``) and optionally a chart; the numbers come from
``usage.analytics``, which aggregates in SQL.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.template.response import TemplateResponse
from django.urls import reverse

from backoffice import margins
from backoffice.forms import PRESETS, PeriodForm
from cohorta.admin_tools.csv_export import csv_response
from usage import analytics
from usage.analytics import Period
from usage.charts import metric_chart, ranked_metric_chart
from usage.features import feature_label

TOP_ROWS = 100  # rows shown on a page; the CSV has them all


_ADMIN_LINKS = {"user": "admin:accounts_user_change", "focus_group": "admin:focusgroups_focusgroup_change"}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"  # text | usd (LLM cost: sub-cent precision) | money | int | pct | date
    link: tuple[str, str] | None = None  # (admin object kind, the row key holding its id)
    csv_only: bool = False  # an identifier for joining the CSV with other data; the page shows the label

    def cell(self, row: dict) -> dict:
        value = row.get(self.key)
        url = None
        if self.link and row.get(self.link[1]) is not None:
            url = reverse(_ADMIN_LINKS[self.link[0]], args=[row[self.link[1]]])
        return {
            "text": _format(value, self.kind),
            "url": url,
            "numeric": self.kind in NUMERIC_KINDS,
            "nowrap": self.kind == "date",
        }


NUMERIC_KINDS = ("usd", "money", "int", "pct")


def _format(value, kind: str) -> str:
    if value is None or value == "":
        return "—"
    if kind in ("usd", "money"):
        # LLM costs under a dollar need more than cents to be told apart; revenue does not.
        places = 4 if kind == "usd" and abs(value) < 1 else 2
        return f"{'-' if value < 0 else ''}${abs(value):,.{places}f}"
    if kind == "int":
        return f"{value:,}"
    if kind == "pct":
        return f"{value}%"
    if kind == "date":
        return value.strftime("%a %d %b %Y")
    return str(value)


@dataclass
class Table:
    columns: list[Column]
    rows: list[dict]
    truncated: bool = False

    def csv_rows(self):
        for row in self.rows:
            yield ["" if row.get(c.key) is None else row.get(c.key) for c in self.columns]

    @property
    def shown_columns(self) -> list[Column]:
        return [c for c in self.columns if not c.csv_only]

    def cells(self) -> list[list[dict]]:
        return [[column.cell(row) for column in self.shown_columns] for row in self.rows]


@dataclass(frozen=True)
class Page:
    slug: str
    url_name: str
    tab: str
    title: str
    build: Callable[..., dict] = field(repr=False)
    granularity: bool = False


_COST_COLUMNS = [
    Column("cost_usd", "LLM cost (USD)", "usd"),
    Column("share", "Share", "pct"),
    Column("calls", "Calls", "int"),
    Column("input_tokens", "Input tokens", "int"),
    Column("output_tokens", "Output tokens", "int"),
]
_MARGIN_COLUMNS = [
    Column("revenue_usd", "Revenue (USD)", "money"),
    Column("llm_cost_usd", "LLM cost (USD)", "usd"),
    Column("margin_usd", "Margin (USD)", "money"),
    Column("margin_pct", "Margin %", "pct"),
]


def _usd_text(value: Decimal) -> str:
    return f"${value:,.2f}"


def _overview(period: Period, export: bool, granularity: str) -> dict:
    by_day = analytics.usage_by_day(period=period)
    totals = analytics.usage_totals(period=period)
    return {
        "cards": [
            ("LLM cost", _usd_text(totals["cost_usd"]), ""),
            ("Calls", f"{totals['calls']:,}", f"{totals['errors']:,} failed"),
            ("Tokens in / out", f"{totals['input_tokens']:,} / {totals['output_tokens']:,}", ""),
            (
                "Uncertain cost",
                f"{totals['unpriced']:,} unpriced",
                f"{totals['estimated']:,} with estimated tokens",
            ),
        ],
        "table": Table(
            [
                Column("day", "Day", "date"),
                Column("cost_usd", "LLM cost (USD)", "usd"),
                Column("calls", "Calls", "int"),
                Column("input_tokens", "Input tokens", "int"),
                Column("output_tokens", "Output tokens", "int"),
            ],
            by_day,
        ),
        "chart": metric_chart(labels=[row["day"].isoformat() for row in by_day], rows=by_day),
    }


def _chart_label(row: dict) -> str:
    label = str(row["label"] or "—")
    if row.get("provider_label") and row["key"] != row["provider"]:
        return f"{label} · {row['provider_label']}"  # a model: which provider it ran on
    return label


def _grouped(dimension: str, label: str, plural: str) -> Callable[..., dict]:
    def build(period: Period, export: bool, granularity: str) -> dict:
        # Users can number in the thousands: the page shows the top ones, the CSV all.
        limit = None if export or dimension != "user" else TOP_ROWS
        grouped = analytics.usage_by(period=period, dimension=dimension, limit=limit)
        key_column = Column("label", label, link=("user", "key") if dimension == "user" else None)
        columns = [key_column, *_COST_COLUMNS]
        if dimension == "model":
            # The same model name can run on two providers: each row says which.
            columns.insert(1, Column("provider_label", "Provider"))
            columns.append(Column("provider", "Provider id", csv_only=True))
        if dimension == "feature":
            for row in grouped.rows:
                row["label"] = feature_label(row["key"])
            columns.append(Column("key", "Feature id", csv_only=True))
        return {
            "cards": [
                ("LLM cost", _usd_text(grouped.total_cost_usd), ""),
                (f"{plural} with calls", f"{grouped.groups:,}", ""),
            ],
            "table": Table(columns, grouped.rows, truncated=len(grouped.rows) < grouped.groups),
            "chart": ranked_metric_chart(rows=grouped.rows, label=_chart_label),
        }

    return build


def _margin(period: Period, export: bool, granularity: str) -> dict:
    rows = margins.margin_by_period(period=period, granularity=granularity)
    return {
        "table": Table(
            [
                Column("period", f"{granularity.capitalize()} starting", "date"),
                Column("credits_sold", "Credits sold", "int"),
                Column("credits_spent", "Credits spent", "int"),
                Column("calls", "LLM calls", "int"),
                *_MARGIN_COLUMNS,
            ],
            rows,
        ),
        "chart": metric_chart(
            labels=[row["period"].isoformat() for row in rows],
            rows=[{**row, "cost_usd": row["llm_cost_usd"]} for row in rows],
            cost_datasets=[
                {"label": "Revenue (USD)", "data": [row["revenue_usd"] for row in rows]},
                {"label": "LLM cost (USD)", "data": [row["llm_cost_usd"] for row in rows]},
                {"label": "Margin (USD)", "type": "line", "data": [row["margin_usd"] for row in rows]},
            ],
            empty={"cost": "No revenue and no LLM cost in this period."},
        ),
        "note": "Revenue: paid Stripe checkouts in USD, net of refunds; credits sold without a payment "
        f"record are valued at ${margins.usd_per_credit()} a credit (ANALYTICS_USD_PER_CREDIT).",
    }


def _focus_groups(period: Period, export: bool, granularity: str) -> dict:
    limit = None if export else TOP_ROWS
    rows = margins.margin_by_focus_group(period=period, limit=limit)
    for row in rows:
        row["cost_usd"], row["tokens"] = row["llm_cost_usd"], row["input_tokens"] + row["output_tokens"]
    return {
        "table": Table(
            [
                Column("title", "Focus group", link=("focus_group", "focus_group_id")),
                Column("owner_email", "Owner", link=("user", "owner_id")),
                Column("calls", "LLM calls", "int"),
                Column("tokens", "Tokens", "int"),
                Column("credits_spent", "Credits charged", "int"),
                *_MARGIN_COLUMNS,
                Column("focus_group_id", "Focus group id", csv_only=True),
            ],
            rows,
            truncated=limit is not None and len(rows) >= limit,
        ),
        "chart": ranked_metric_chart(rows=rows, label=lambda row: row["title"]),
        "note": "Credits charged: spends referenced to the focus group, minus refunds, valued at "
        f"${margins.usd_per_credit()} a credit (ANALYTICS_USD_PER_CREDIT).",
    }


PAGES = [
    Page("", "analytics", "Overview", "Cost per day", _overview),
    Page("models/", "analytics_models", "By model", "Cost by model", _grouped("model", "Model", "Models")),
    Page(
        "providers/",
        "analytics_providers",
        "By provider",
        "Cost by provider",
        _grouped("provider", "Provider", "Providers"),
    ),
    Page(
        "features/", "analytics_features", "By feature", "Cost by feature", _grouped("feature", "Feature", "Features")
    ),
    Page("users/", "analytics_users", "Top spenders", "Cost by user", _grouped("user", "User", "Users")),
    Page("margin/", "analytics_margin", "Margin", "Credits sold vs LLM cost", _margin, granularity=True),
    Page("focus-groups/", "analytics_focus_groups", "Focus groups", "Margin per focus group", _focus_groups),
]


def analytics_page(request, *, site, page: Page):
    form = PeriodForm(request.GET or None)
    period = form.period()
    granularity = form.granularity_value()
    export = request.GET.get("export") == "csv"
    data = page.build(period, export, granularity)
    table: Table = data["table"]
    if export:
        filename = f"cohorta-{page.url_name.replace('_', '-')}-{period.start}-{period.end}.csv"
        return csv_response(filename=filename, header=[c.label for c in table.columns], rows=table.csv_rows())
    query = request.GET.copy()
    query.pop("export", None)
    query["export"] = "csv"
    context = {
        **site.each_context(request),
        "title": page.title,
        "page": page,
        "form": form,
        "period": period,
        "granularity": granularity,
        "presets": [(key, label) for key, (label, _) in PRESETS.items()],
        "csv_url": f"{request.path}?{query.urlencode()}",
        "user_url": reverse("admin:accounts_user_changelist"),
        **data,
    }
    return TemplateResponse(request, "backoffice/analytics.html", context)
