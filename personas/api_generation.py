"""API for AI work on personas: generation briefs, AI modification, image descriptions.
Each answers 202 with the job to follow (GET /api/v1/jobs/<id>/ or the jobs websocket)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.jobs.serializers import JobSerializer
from personas import generation
from personas.access import get_brief_for_user, get_folder_for_user, get_persona_for_user
from personas.models import GenerationBrief, Persona


class BriefInputSerializer(serializers.Serializer):
    description = serializers.CharField(min_length=10, max_length=4000)
    count = serializers.IntegerField(min_value=1, max_value=20)
    age_min = serializers.IntegerField(min_value=18, max_value=90, required=False, allow_null=True)
    age_max = serializers.IntegerField(min_value=18, max_value=90, required=False, allow_null=True)
    locations = serializers.ListField(child=serializers.CharField(max_length=120), required=False, max_length=20)
    gender_mix = serializers.CharField(max_length=120, required=False, allow_blank=True)
    folder_id = serializers.IntegerField(required=False, allow_null=True)
    image_description = serializers.CharField(max_length=4000, required=False, allow_blank=True)
    files = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        max_length=5,
        help_text="Grounding documents (multipart): PDF, DOCX, TXT, MD, CSV.",
    )


class PersonaSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Persona
        fields = ["id", "name", "age", "gender", "location", "occupation", "source", "simulated", "grounding"]
        read_only_fields = fields


class BriefSerializer(serializers.ModelSerializer):
    job = JobSerializer(read_only=True)
    personas = PersonaSummarySerializer(many=True, read_only=True)
    sources = serializers.SerializerMethodField()

    class Meta:
        model = GenerationBrief
        fields = [
            "id",
            "description",
            "count",
            "age_min",
            "age_max",
            "locations",
            "gender_mix",
            "folder",
            "image_description",
            "created_at",
            "job",
            "personas",
            "sources",
        ]
        read_only_fields = fields

    def get_sources(self, brief) -> list[dict]:
        return [
            {"filename": s.filename, "kind": s.kind, "truncated": s.truncated, "warnings": s.warnings}
            for s in brief.sources.all()
        ]


@extend_schema(
    tags=["personas"],
    request={"multipart/form-data": BriefInputSerializer, "application/json": BriefInputSerializer},
    responses={202: BriefSerializer},
)
class GenerateView(APIView):
    """Generate personas from a brief (optionally grounded in documents). Credits are reserved at once:
    402 when they are short, before any work starts."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def post(self, request):
        if hasattr(request.data, "getlist"):  # multipart or form: flatten, files and comma-separated locations
            data = {key: request.data.get(key) for key in request.data if key != "files"}
            data = {key: value for key, value in data.items() if value not in ("", None)}
            data["files"] = request.FILES.getlist("files")
            if "locations" in data:
                data["locations"] = [part.strip() for part in str(data["locations"]).split(",") if part.strip()]
        else:
            data = request.data
        serializer = BriefInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        folder = get_folder_for_user(request.user, values["folder_id"]) if values.get("folder_id") else None
        brief = generation.brief_start(
            owner=request.user,
            description=values["description"],
            count=values["count"],
            age_min=values.get("age_min"),
            age_max=values.get("age_max"),
            locations=values.get("locations") or [],
            gender_mix=values.get("gender_mix", ""),
            folder=folder,
            files=values.get("files") or [],
            image_description=values.get("image_description", ""),
        )
        return Response(BriefSerializer(brief).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["personas"], responses=BriefSerializer)
class BriefDetailView(APIView):
    """A generation brief with its job and the personas delivered so far."""

    def get(self, request, brief_id: int):
        return Response(BriefSerializer(get_brief_for_user(request.user, brief_id)).data)


class ModifyInputSerializer(serializers.Serializer):
    instruction = serializers.CharField(max_length=1000)


@extend_schema(tags=["personas"], request=ModifyInputSerializer, responses={202: JobSerializer})
class ModifyView(APIView):
    """Change a persona with AI (“make her more price-sensitive”): a new version, credits as set by admins."""

    def post(self, request, persona_id: int):
        persona = get_persona_for_user(request.user, persona_id)
        data = ModifyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = generation.persona_modify_start(persona=persona, instruction=data.validated_data["instruction"])
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    tags=["personas"],
    request={"multipart/form-data": inline_serializer("ImageInput", {"image": serializers.FileField()})},
    responses={202: JobSerializer},
)
class DescribeImageView(APIView):
    """Describe an image (JPEG, PNG, WebP) with the vision model; the job result holds the description."""

    parser_classes = [MultiPartParser, FormParser]

    def post(self, request):
        upload = request.FILES.get("image")
        if upload is None:
            raise serializers.ValidationError({"image": ["Attach an image file."]})
        job = generation.image_describe_start(owner=request.user, upload=upload)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
