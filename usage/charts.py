"""Chart configurations for ``static/js/metric-chart.js``: one chart with a Cost / Tokens / Calls switch.

Pages embed the returned dict with ``json_script``. Cost alone leaves a free account
(the offline simulator costs $0) looking at an empty grid, so every chart carries all
three metrics, opens on the first one that has something to show, and names the
metric that is all zero instead of drawing it.
"""

from collections.abc import Callable, Sequence

METRICS = (("cost", "Cost"), ("tokens", "Tokens"), ("calls", "Calls"))

EMPTY = {
    "cost": "No cost to show: calls made with the offline simulator are free, and calls to a model "
    "without a price have no cost until it gets one.",
    "tokens": "No tokens to show: the calls here used none (they failed before the model ran).",
    "calls": "No calls to show.",
}


def _number(value) -> float | int:
    return value if isinstance(value, int) else float(value or 0)


def _metric(key: str, labels: list[str], datasets: list[dict], *, stacked: bool = False, empty: str = "") -> dict:
    data = [[_number(v) for v in dataset["data"]] for dataset in datasets]
    return {
        "key": key,
        "name": dict(METRICS)[key],
        "format": "usd" if key == "cost" else "int",
        "labels": labels,
        "datasets": [{**dataset, "data": values} for dataset, values in zip(datasets, data, strict=True)],
        "stacked": stacked,
        "empty": empty or EMPTY[key],
        "has_data": any(v for values in data for v in values),
    }


def _config(metrics: list[dict], *, horizontal: bool) -> dict:
    default = next((m["key"] for m in metrics if m["has_data"]), "cost")
    return {"horizontal": horizontal, "metric": default, "metrics": metrics}


def _tokens(input_tokens: Sequence, output_tokens: Sequence) -> list[dict]:
    return [
        {"label": "Input tokens", "data": list(input_tokens)},
        {"label": "Output tokens", "data": list(output_tokens)},
    ]


def metric_chart(
    *,
    labels: list[str],
    rows: Sequence[dict],
    cost_datasets: list[dict] | None = None,
    empty: dict[str, str] | None = None,
) -> dict:
    """A chart over a sequence (days, weeks…): each row has ``cost_usd``, ``calls``,
    ``input_tokens`` and ``output_tokens``. ``cost_datasets`` replaces the single cost series
    (the margin page draws revenue and margin beside the cost)."""
    empty = empty or {}
    cost = cost_datasets or [{"label": "LLM cost (USD)", "data": [row["cost_usd"] for row in rows]}]
    return _config(
        [
            _metric("cost", labels, cost, empty=empty.get("cost", "")),
            _metric(
                "tokens",
                labels,
                _tokens([row["input_tokens"] for row in rows], [row["output_tokens"] for row in rows]),
                stacked=True,
                empty=empty.get("tokens", ""),
            ),
            _metric(
                "calls",
                labels,
                [{"label": "Calls", "data": [row["calls"] for row in rows]}],
                empty=empty.get("calls", ""),
            ),
        ],
        horizontal=False,
    )


def ranked_metric_chart(
    *, rows: Sequence[dict], label: Callable[[dict], str], top: int = 12, empty: dict[str, str] | None = None
) -> dict:
    """A horizontal bar chart of the ``top`` rows (models, features, users, sessions) by each
    metric: the most expensive are not always the busiest."""
    empty = empty or {}
    measures = {
        "cost": lambda row: row["cost_usd"] or 0,
        "tokens": lambda row: row["input_tokens"] + row["output_tokens"],
        "calls": lambda row: row["calls"],
    }
    metrics = []
    for key, _ in METRICS:
        # Rows at zero are left out: a ranking of nothing says less than the "no cost" note.
        ranked = sorted((row for row in rows if measures[key](row)), key=measures[key], reverse=True)[:top]
        labels = [label(row) for row in ranked]
        if key == "cost":
            datasets = [{"label": "LLM cost (USD)", "data": [row["cost_usd"] for row in ranked]}]
        elif key == "tokens":
            datasets = _tokens([row["input_tokens"] for row in ranked], [row["output_tokens"] for row in ranked])
        else:
            datasets = [{"label": "Calls", "data": [row["calls"] for row in ranked]}]
        metrics.append(_metric(key, labels, datasets, stacked=key == "tokens", empty=empty.get(key, "")))
    return {**_config(metrics, horizontal=True), "top": top}
