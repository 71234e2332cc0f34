"""The validation API: thin views over validation.services / validation.selectors. Another user's reference or
validation is a 404, never a 403. An upload answers 201 with the reader's suggested mapping; a mapping is
checked against every row (400 with the service's message naming the column); starting answers 202 with the
validation and its cost, 402 before any work when credits are short."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.admin_tools.csv_export import csv_response
from cohorta.errors import ApplicationError
from validation import exports, selectors, services
from validation.access import get_reference_for_user, get_validation_for_user
from validation.models import ValidationState
from validation.serializers import (
    MappingSerializer,
    ReferenceListItemSerializer,
    ReferenceSerializer,
    ReferenceUploadSerializer,
    ValidationListItemSerializer,
    ValidationSerializer,
    ValidationStartSerializer,
)

TAGS = ["validation"]
_NOT_FOUND = OpenApiResponse(description="Not yours, or no such one.")
_NOT_SCORED = OpenApiResponse(description="Not scored yet: the message says where the validation is.")


def _scored(validation) -> None:
    if validation.state != ValidationState.DONE:
        raise ApplicationError(
            f"This validation has no scorecard yet: it is at “{validation.get_state_display()}”."
            + (
                f" {validation.error}"
                if validation.error
                else f" Follow it with GET /api/v1/validations/{validation.pk}/."
            ),
            code="not_scored",
            status_code=status.HTTP_409_CONFLICT,
        )


# --- references ----------------------------------------------------------------------------------------


class ReferenceListCreateView(generics.ListAPIView):
    serializer_class = ReferenceListItemSerializer
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return selectors.reference_list(owner=self.request.user)

    @extend_schema(tags=TAGS, responses=ReferenceListItemSerializer(many=True))
    def get(self, request, *args, **kwargs):
        """Your reference surveys (real respondents' answers you uploaded), newest first."""
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        request={"multipart/form-data": ReferenceUploadSerializer},
        responses={
            201: ReferenceSerializer,
            400: OpenApiResponse(
                description="The file cannot be read: the message says what is wrong (no header row, mixed "
                "encodings, a line with too many values, over the size limit…) and what to do."
            ),
        },
    )
    def post(self, request):
        """Upload a survey real people answered, as a CSV; 201 with its columns and the `suggested` mapping
        (which columns look like questions, on which scale, and which like demographics). Confirm or correct
        it with `PUT /validation/references/{id}/mapping/`."""
        data = ReferenceUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reference = services.reference_upload(
            owner=request.user, upload=data.validated_data["file"], name=data.validated_data["name"]
        )
        return Response(ReferenceSerializer(reference).data, status=status.HTTP_201_CREATED)


class ReferenceDetailView(APIView):
    @extend_schema(tags=TAGS, responses={200: ReferenceSerializer, 404: _NOT_FOUND})
    def get(self, request, reference_id: int):
        """A reference survey: its columns, the suggested mapping and the saved one."""
        return Response(ReferenceSerializer(get_reference_for_user(request.user, reference_id)).data)

    @extend_schema(tags=TAGS, responses={204: None, 404: _NOT_FOUND})
    def delete(self, request, reference_id: int):
        """Delete a reference survey and its rows; validations against it keep their scorecards."""
        reference = get_reference_for_user(request.user, reference_id, for_write=True)
        services.reference_delete(reference=reference)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReferenceMappingView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=TAGS,
        request=MappingSerializer,
        responses={
            200: MappingSerializer,
            400: OpenApiResponse(
                description="The mapping does not fit the file: a column that is not in it, a scale with answers "
                "outside it, no question, a column mapped twice… The message names the column (`extra.column`)."
            ),
            404: _NOT_FOUND,
        },
    )
    def put(self, request, reference_id: int):
        """Say which columns are questions (with their scales or options), which are demographics, which is
        the weight. Checked against every row; 200 with the checked mapping (each question's answered and
        missing counts added)."""
        reference = get_reference_for_user(request.user, reference_id, for_write=True)
        # Passed to the service as sent: its checks (and messages) are the mapping page's too.
        reference = services.reference_map(reference=reference, mapping=request.data)
        return Response(reference.mapping)


# --- validations ---------------------------------------------------------------------------------------


class ValidationListCreateView(generics.ListAPIView):
    serializer_class = ValidationListItemSerializer

    def get_queryset(self):
        return selectors.validation_list(owner=self.request.user)

    @extend_schema(tags=TAGS, responses=ValidationListItemSerializer(many=True))
    def get(self, request, *args, **kwargs):
        """Your validations, newest first, with their state and (once scored) whether the verdict passed."""
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        request=ValidationStartSerializer,
        responses={
            202: ValidationSerializer,
            400: OpenApiResponse(
                description="A size of 0 or more than the reference's respondents, or a reference not mapped yet: "
                "the message says what to fix."
            ),
            402: OpenApiResponse(description="Not enough credits: nothing was created."),
            404: _NOT_FOUND,
        },
    )
    def post(self, request):
        """Validate against a reference: respondents are sampled now (the seed is stored), the matched panel
        is written, then asked the reference's questions, then scored. 202 + the validation with its `cost`;
        follow `GET /validations/{id}/`."""
        data = ValidationStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        reference = get_reference_for_user(request.user, values["reference_id"], for_write=True)
        validation = services.validation_start(
            owner=request.user, reference=reference, size=values["size"], seed=values["seed"], depth=values["depth"]
        )
        validation = get_validation_for_user(request.user, validation.pk)
        return Response(ValidationSerializer(validation).data, status=status.HTTP_202_ACCEPTED)


class ValidationDetailView(APIView):
    @extend_schema(tags=TAGS, responses={200: ValidationSerializer, 404: _NOT_FOUND})
    def get(self, request, validation_id: int):
        """A validation: its state, each step's progress, the error if it stopped, links to its panel and run,
        and the verdict and scorecard once done."""
        return Response(ValidationSerializer(get_validation_for_user(request.user, validation_id)).data)

    @extend_schema(tags=TAGS, responses={204: None, 404: _NOT_FOUND})
    def delete(self, request, validation_id: int):
        """Delete a validation and its scorecard; its matched panel and survey stay."""
        validation = get_validation_for_user(request.user, validation_id, for_write=True)
        services.validation_delete(validation=validation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ValidationScorecardView(APIView):
    @extend_schema(
        tags=TAGS,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="`scorecard` (per question: shares, measures, baselines, normalised score, subgroups; "
                "the verdict), with the reference's name, the mapping, the seed, `panel_id` and `run_id`.",
            ),
            404: _NOT_FOUND,
            409: _NOT_SCORED,
        },
    )
    def get(self, request, validation_id: int):
        """The whole scorecard as JSON, with what it was computed from."""
        validation = get_validation_for_user(request.user, validation_id)
        _scored(validation)
        return Response(exports.validation_document(validation))


class ValidationScorecardCsvView(APIView):
    @extend_schema(
        tags=TAGS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="A row per question and per subgroup: every measure, each beside the same measure "
                "for the uniform, majority and split-half (ceiling) baselines.",
            ),
            404: _NOT_FOUND,
            409: _NOT_SCORED,
        },
    )
    def get(self, request, validation_id: int):
        """The scorecard as a CSV."""
        validation = get_validation_for_user(request.user, validation_id)
        _scored(validation)
        return csv_response(
            filename=f"validation-{validation.pk}-scorecard.csv",
            header=exports.scorecard_csv_header(),
            rows=exports.scorecard_csv_rows(validation),
        )
