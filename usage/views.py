from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from usage.charts import metric_chart
from usage.selectors import usage_recent_events, usage_summary_for_user


@login_required
def index(request: HttpRequest) -> HttpResponse:
    summary = usage_summary_for_user(user=request.user)
    days = summary["by_day"]
    chart = metric_chart(
        labels=[row["day"].strftime("%d %b") for row in days],
        rows=days,
        empty={
            "cost": f"No cost in the last {len(days)} days: your calls were free (offline simulator) or unpriced.",
            "tokens": f"No tokens in the last {len(days)} days: your calls failed before the model ran.",
            "calls": f"No AI calls in the last {len(days)} days.",
        },
    )
    context = {"summary": summary, "chart": chart, "events": usage_recent_events(user=request.user)}
    return render(request, "usage/index.html", context)
