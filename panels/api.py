"""The panels API: thin views over panels.services / panels.selectors. Another user's panel or upload is a
404, never a 403. Building answers 202 with the panel, its job and its cost; 402 when credits are short
(nothing is created); a bad size, target or quota is a 400 whose message says what to fix."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.admin_tools.csv_export import csv_response
from panels import exports, selectors, services
from panels.access import get_microdata_file_for_user, get_panel_for_user, get_population_file_for_user
from panels.composition import composition_csv_rows
from panels.models import QualityCheck
from panels.quality import quality_check_start
from panels.quality_report import latest_quality_check, quality_report
from panels.runner import member_counts
from panels.serializers import (
    CompositionSerializer,
    MarginalsUploadSerializer,
    MicrodataUploadSerializer,
    PanelBuildSerializer,
    PanelListItemSerializer,
    PanelSerializer,
    TargetSerializer,
)

TAGS = ["panels"]
_OF = OpenApiParameter(
    "of",
    str,
    enum=["written", "sampled"],
    default="written",
    description="`written`: the people whose persona is written; `sampled`: everyone sampled.",
)
_NOT_FOUND = OpenApiResponse(description="Not yours, or no such one.")
_BAD_FILE = OpenApiResponse(
    description="The file cannot be used: the message says what is wrong (e.g. a dimension that does not add up "
    "to 100%, no weight column, too large)."
)


def _panel_data(panel, *, with_job: bool = True) -> dict:
    return PanelSerializer(panel, context={"counts": member_counts(panel), "with_job": with_job}).data


# --- targets ---------------------------------------------------------------------------------------


class TargetListView(APIView):
    @extend_schema(tags=TAGS, responses=TargetSerializer(many=True))
    def get(self, request):
        """Every population you can draw a panel from: the built-in ones and your uploads, with each
        dimension's categories, shares (percent), source and year."""
        return Response(TargetSerializer(exports.target_options(owner=request.user), many=True).data)


class MarginalsUploadView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=TAGS,
        request={"multipart/form-data": MarginalsUploadSerializer},
        responses={201: TargetSerializer, 400: _BAD_FILE},
    )
    def post(self, request):
        """Upload a population's marginals (any country) as a CSV; 201 with the new target."""
        data = MarginalsUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.population_upload(
            owner=request.user,
            upload=data.validated_data["file"],
            name=data.validated_data["name"],
            country=data.validated_data["country"],
        )
        return Response(TargetSerializer(exports.upload_option(item)).data, status=status.HTTP_201_CREATED)


class MicrodataUploadView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=TAGS,
        request={"multipart/form-data": MicrodataUploadSerializer},
        responses={201: TargetSerializer, 400: _BAD_FILE},
    )
    def post(self, request):
        """Upload microdata (one row per real respondent, with a weight column); 201 with the new target.
        Panels drawn from it keep its joint structure (age × income…), not only its marginals."""
        data = MicrodataUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.microdata_upload(
            owner=request.user,
            upload=data.validated_data["file"],
            name=data.validated_data["name"],
            weight_column=data.validated_data["weight_column"] or None,
        )
        return Response(TargetSerializer(exports.upload_option(item)).data, status=status.HTTP_201_CREATED)


class MarginalsDetailView(APIView):
    @extend_schema(tags=TAGS, responses={204: None, 404: _NOT_FOUND})
    def delete(self, request, population_id: int):
        """Delete an uploaded population; panels drawn from it keep their own copy."""
        population_file = get_population_file_for_user(request.user, population_id, for_write=True)
        services.population_file_delete(population_file=population_file)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MicrodataDetailView(APIView):
    @extend_schema(tags=TAGS, responses={204: None, 404: _NOT_FOUND})
    def delete(self, request, microdata_id: int):
        """Delete uploaded microdata; panels drawn from it keep their own copy of its marginals."""
        microdata_file = get_microdata_file_for_user(request.user, microdata_id, for_write=True)
        services.microdata_file_delete(microdata_file=microdata_file)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- panels ----------------------------------------------------------------------------------------


class PanelListCreateView(generics.ListAPIView):
    serializer_class = PanelListItemSerializer

    def get_queryset(self):
        return selectors.panel_list(owner=self.request.user)

    @extend_schema(tags=TAGS, responses=PanelListItemSerializer(many=True))
    def get(self, request, *args, **kwargs):
        """Your panels, newest first, with how many of their people are written."""
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        request=PanelBuildSerializer,
        responses={
            202: PanelSerializer,
            400: OpenApiResponse(
                description="A size of 0 or over the limit, an unknown target, or quotas that are impossible or "
                "contradict each other: the message names the quota; `fields` names `size`, `target` or `quotas`."
            ),
            402: OpenApiResponse(description="Not enough credits: nothing was created."),
        },
    )
    def post(self, request):
        """Build a panel: its people are sampled now (the seed is stored: the same target, quotas and seed
        give the same panel), their credits reserved, and a job writes their personas. 202 + the panel with
        `job_id` and `cost`; follow `GET /panels/{id}/` or the job."""
        data = PanelBuildSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        panel = services.panel_build_start(
            owner=request.user,
            target=values["target"],
            size=values["size"],
            name=values["name"],
            quotas=[
                {key: (dict(value) if key == "where" else value) for key, value in quota.items()}
                for quota in values["quotas"]
            ],
            depth=values["depth"],
            seed=values["seed"],
            description=values["description"],
        )
        panel = get_panel_for_user(request.user, panel.pk)
        return Response(_panel_data(panel), status=status.HTTP_202_ACCEPTED)


class PanelDetailView(APIView):
    @extend_schema(tags=TAGS, responses={200: PanelSerializer, 404: _NOT_FOUND})
    def get(self, request, panel_id: int):
        """A panel: its state, its people per state (`counts`) and its job."""
        return Response(_panel_data(get_panel_for_user(request.user, panel_id)))

    @extend_schema(tags=TAGS, responses={204: None, 404: _NOT_FOUND})
    def delete(self, request, panel_id: int):
        """Delete a panel (a panel still being written is cancelled first: who is not written is refunded).
        Its personas stay in their folder."""
        panel = get_panel_for_user(request.user, panel_id, for_write=True)
        services.panel_delete(panel=panel)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PanelCompositionView(APIView):
    @extend_schema(tags=TAGS, parameters=[_OF], responses={200: CompositionSerializer, 404: _NOT_FOUND})
    def get(self, request, panel_id: int):
        """The panel against its target, dimension by dimension (percent; `deviation` in points), and each
        quota met or not. Counts the people whose persona is written; `?of=sampled` counts every sampled
        person instead."""
        panel = get_panel_for_user(request.user, panel_id)
        comp = selectors.panel_composition(panel, written_only=request.query_params.get("of") != "sampled")
        return Response(comp)


class PanelCompositionCsvView(APIView):
    @extend_schema(
        tags=TAGS,
        parameters=[_OF],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="A row per category."),
            404: _NOT_FOUND,
        },
    )
    def get(self, request, panel_id: int):
        """The composition as a CSV: dimension, category, target, panel, deviation…"""
        panel = get_panel_for_user(request.user, panel_id)
        rows = composition_csv_rows(
            selectors.panel_composition(panel, written_only=request.query_params.get("of") != "sampled")
        )
        return csv_response(filename=f"panel-{panel.pk}-composition.csv", header=rows[0], rows=rows[1:])


class PanelQualityView(APIView):
    @extend_schema(
        tags=TAGS,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="`latest`: the latest quality check (null when none): progress, mean scores (0–9), the "
                "personas under the quality bar with the judge's reason, failures, and the panel's diversity "
                "(per-item variance ratio against psych/bfi respondents, mean pairwise answer distance).",
            ),
            404: _NOT_FOUND,
        },
    )
    def get(self, request, panel_id: int):
        """The panel's latest quality check."""
        panel = get_panel_for_user(request.user, panel_id)
        check = latest_quality_check(panel)
        return Response({"latest": quality_report(check) if check else None})

    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            202: OpenApiResponse(OpenApiTypes.OBJECT, description="The check, started: follow its `job_id`."),
            400: OpenApiResponse(description="Nobody in the panel has a written persona yet."),
            402: OpenApiResponse(description="Not enough credits: nothing was started."),
            404: _NOT_FOUND,
            409: OpenApiResponse(description="The panel is still being written, or a check of it is running."),
        },
    )
    def post(self, request, panel_id: int):
        """Check the panel's quality: each written persona answers a short probe interview and ten Big Five
        items, an AI judge scores how well it stays in character and agrees with itself (0–9), and the
        panel's diversity is measured against real people. Costs the admin-set credits per persona,
        reserved now (402 when short) and refunded for personas that cannot be checked. 202 + the check."""
        panel = get_panel_for_user(request.user, panel_id, for_write=True)
        check = quality_check_start(panel=panel)
        check = QualityCheck.objects.select_related("job").get(pk=check.pk)
        return Response({"latest": quality_report(check)}, status=status.HTTP_202_ACCEPTED)
