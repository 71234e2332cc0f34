from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from usage import analytics
from usage.selectors import usage_events_for_user, usage_recent_events, usage_summary_for_user
from usage.serializers import (
    StaffUsageSummaryQuerySerializer,
    StaffUsageSummarySerializer,
    UsageEventSerializer,
    UsageSummarySerializer,
)


@extend_schema(tags=["usage"], responses=UsageSummarySerializer)
class MyUsageView(APIView):
    """This month's LLM spend against your quota, by feature, model and day, and your latest calls."""

    def get(self, request):
        summary = usage_summary_for_user(user=request.user)
        summary["recent"] = usage_recent_events(user=request.user)
        return Response(UsageSummarySerializer(summary).data)


@extend_schema(tags=["usage"])
class MyUsageEventsView(generics.ListAPIView):
    """Every LLM call made for you, newest first."""

    serializer_class = UsageEventSerializer

    def get_queryset(self):
        return usage_events_for_user(user=self.request.user)


@extend_schema(
    tags=["staff"],
    parameters=[StaffUsageSummaryQuerySerializer],
    responses={200: StaffUsageSummarySerializer},
    summary="LLM usage summary for operators (staff only)",
)
class StaffUsageSummaryView(APIView):
    """Every user's LLM cost and calls over a date range, grouped by user, model, feature or day.

    Staff only. Days are local (TIME_ZONE) and the range is inclusive; bad
    parameters get a 400 naming the field."""

    permission_classes = [IsAdminUser]

    def get(self, request):
        params = StaffUsageSummaryQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        period, group_by = params.validated_data["period"], params.validated_data["group_by"]
        if group_by == "day":
            rows = [{"key": row["day"].isoformat(), **row} for row in analytics.usage_by_day(period=period)]
        else:
            rows = analytics.usage_by(period=period, dimension=group_by).rows
        summary = StaffUsageSummarySerializer(
            {"group_by": group_by, "period": period, "totals": analytics.usage_totals(period=period), "rows": []}
        ).data
        # Rows are rendered here, in the shape StaffUsageRowSerializer documents: one per user
        # can mean thousands, and DRF's field-by-field serialisation would be most of the time.
        summary["rows"] = [_row(row) for row in rows]
        return Response(summary)


def _row(row: dict) -> dict:
    key = row["key"]
    out = {
        "key": None if key is None else str(key),
        "label": str(row.get("label") or key),
        "cost_usd": f"{row['cost_usd']:.6f}",
        "calls": row["calls"],
    }
    if "input_tokens" in row:
        out["input_tokens"], out["output_tokens"] = row["input_tokens"], row["output_tokens"]
    if row.get("provider") is not None and row["provider"] != key:
        out["provider"] = row["provider"]
    return out
