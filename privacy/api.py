"""Your data through the API: deleting the account (DELETE /me/) and exporting everything."""

from django.contrib.auth import logout
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.accounts.api import MeView
from cohorta.jobs.serializers import JobSerializer
from privacy import erasure, services
from privacy.access import get_data_export_for_user


class AccountDeleteInputSerializer(serializers.Serializer):
    password = serializers.CharField(trim_whitespace=False, help_text="Your current password.")


@extend_schema(tags=["account"])
class AccountView(MeView):
    """The account the request is authenticated as."""

    @extend_schema(
        request=AccountDeleteInputSerializer,
        responses={
            204: OpenApiResponse(description="Deleted: content gone, ledger and usage kept anonymised."),
            400: OpenApiResponse(description="Wrong password: nothing was deleted."),
        },
    )
    def delete(self, request):
        """Delete your account for good: personas, sessions, files, exports and API tokens go;
        credit ledger and usage rows stay for accounting, without your email. Needs your password."""
        data = AccountDeleteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        erasure.account_delete(user=request.user, password=data.validated_data["password"])
        logout(request._request)  # a browser session ends with the account
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["account"], request=None, responses={202: JobSerializer})
class DataExportStartView(APIView):
    """Start an export of all your data (a ZIP of JSON files and your uploaded images).

    Answers at once with the job; follow it at /api/v1/jobs/<id>/, then download the ZIP from
    /api/v1/me/export/<id>/download/. While an export is being built, asking again returns it."""

    def post(self, request):
        job = services.data_export_start(user=request.user, request=request)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    tags=["account"],
    responses={
        (200, "application/zip"): OpenApiTypes.BINARY,
        404: OpenApiResponse(description="No such export (or not yours)."),
        409: OpenApiResponse(description="Not ready yet, or the job failed."),
        410: OpenApiResponse(description="Expired and deleted."),
    },
)
class DataExportDownloadView(APIView):
    """Download a finished export (the id is the export job's id). Kept for 7 days."""

    def get(self, request, job_id: str):
        export = get_data_export_for_user(request.user, job_id)
        return services.data_export_response(export=export)
