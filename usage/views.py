from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from usage.selectors import usage_recent_events, usage_summary_for_user


@login_required
def index(request: HttpRequest) -> HttpResponse:
    summary = usage_summary_for_user(user=request.user)
    chart = {
        "labels": [row["day"].strftime("%d %b") for row in summary["by_day"]],
        "costs": [float(row["cost_usd"]) for row in summary["by_day"]],
        "calls": [row["calls"] for row in summary["by_day"]],
    }
    context = {"summary": summary, "chart": chart, "events": usage_recent_events(user=request.user)}
    return render(request, "usage/index.html", context)
