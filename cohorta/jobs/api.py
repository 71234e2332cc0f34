from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.jobs import selectors, services
from cohorta.jobs.access import get_job_for_user
from cohorta.jobs.models import JobState
from cohorta.jobs.serializers import JobSerializer, WorkerCheckInputSerializer


@extend_schema(
    tags=["jobs"],
    parameters=[
        OpenApiParameter("state", enum=JobState.values, required=False),
        OpenApiParameter("kind", str, required=False),
    ],
)
class JobListView(generics.ListAPIView):
    """Your jobs, newest first."""

    serializer_class = JobSerializer

    def get_queryset(self):
        state = self.request.query_params.get("state") or None
        return selectors.jobs_for_user(
            user=self.request.user, state=state, kind=self.request.query_params.get("kind") or None
        ).select_related("target_type")


@extend_schema(tags=["jobs"], responses=JobSerializer)
class JobDetailView(APIView):
    def get(self, request, job_id: str):
        return Response(JobSerializer(get_job_for_user(request.user, job_id)).data)


@extend_schema(tags=["jobs"], request=None, responses=JobSerializer)
class JobCancelView(APIView):
    """Cancel a job. Waiting jobs stop at once; a running job stops at its next step."""

    def post(self, request, job_id: str):
        job = services.job_cancel(job=get_job_for_user(request.user, job_id))
        return Response(JobSerializer(job).data)


@extend_schema(tags=["jobs"], request=None, responses={202: JobSerializer})
class JobRetryView(APIView):
    """Run a failed or interrupted job again."""

    def post(self, request, job_id: str):
        job = services.job_retry(job=get_job_for_user(request.user, job_id))
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["jobs"], request=WorkerCheckInputSerializer, responses={202: JobSerializer})
class WorkerCheckStartView(APIView):
    """Start a worker check: a free job that proves workers run and progress streams."""

    def post(self, request):
        data = WorkerCheckInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.job_create(
            owner=request.user,
            kind="worker_check",
            params=data.validated_data,
            total=data.validated_data["steps"],
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["jobs"], request=None, responses={202: JobSerializer})
class LlmCheckStartView(APIView):
    """Start an AI connection check: one small metered call to the configured model."""

    def post(self, request):
        job = services.job_create(owner=request.user, kind="llm_check", total=1)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
