from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from usage.models import UsageEvent
from usage.selectors import usage_recent_events, usage_summary_for_user
from usage.serializers import UsageEventSerializer, UsageSummarySerializer


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
        return UsageEvent.objects.filter(user=self.request.user).order_by("-created_at", "-id")
