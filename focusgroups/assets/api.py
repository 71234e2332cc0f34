"""API for a session's assets: documents (their text) and images (their description), shown to the personas
as reference material, never as instructions."""

from django.db.models.functions import Length
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.jobs.serializers import JobSerializer
from focusgroups.access import get_asset_for_user, get_focus_group_for_user
from focusgroups.assets import services as asset_services
from focusgroups.models import Asset

PREVIEW_CHARS = 400


class AssetSerializer(serializers.ModelSerializer):
    """An asset without its full text (see the detail endpoint for that)."""

    # A plain string in the schema: an enum named "kind" would collide with CreditTransaction.kind's.
    kind = serializers.CharField(read_only=True, help_text="“document” or “image”.")
    text_preview = serializers.SerializerMethodField(help_text=f"The first {PREVIEW_CHARS} characters of the text.")
    text_length = serializers.SerializerMethodField(help_text="Characters of extracted text (documents).")
    job = JobSerializer(read_only=True, allow_null=True, help_text="The description job (images).")

    class Meta:
        model = Asset
        fields = [
            "id",
            "kind",
            "filename",
            "content_type",
            "size",
            "text_preview",
            "text_length",
            "description",
            "warnings",
            "job",
            "created_at",
        ]
        read_only_fields = fields

    def get_text_preview(self, asset: Asset) -> str:
        return (asset.text or "")[:PREVIEW_CHARS]

    def get_text_length(self, asset: Asset) -> int:
        annotated = getattr(asset, "text_chars", None)
        return annotated if annotated is not None else len(asset.text or "")


class AssetDetailSerializer(AssetSerializer):
    class Meta(AssetSerializer.Meta):
        fields = [*AssetSerializer.Meta.fields, "text"]
        read_only_fields = fields


_UPLOAD = inline_serializer(
    "AssetUpload",
    {
        "file": serializers.FileField(help_text="A PDF, DOCX, TXT or MD document, or a JPEG, PNG or WebP image."),
    },
)
_ERROR = OpenApiResponse(description='The standard error body: {"error": {"code", "message", …}}.')


def _asset_for(request, fg_id: int, asset_id: int, *, write: bool = False) -> Asset:
    return get_asset_for_user(request.user, asset_id, focus_group_id=fg_id, for_write=write)


class AssetListCreateView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=["focus groups"], operation_id="focus_groups_assets_list", responses={200: AssetSerializer(many=True)}
    )
    def get(self, request, fg_id: int):
        """A session's assets, oldest first (at most 10), without their full text."""
        focus_group = get_focus_group_for_user(request.user, fg_id)
        assets = Asset.objects.filter(focus_group=focus_group).select_related("job").annotate(text_chars=Length("text"))
        return Response(AssetSerializer(assets, many=True).data)

    @extend_schema(
        tags=["focus groups"],
        operation_id="focus_groups_assets_create",
        request={"multipart/form-data": _UPLOAD},
        responses={201: AssetDetailSerializer, 400: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    def post(self, request, fg_id: int):
        """Add a document or an image (multipart ``file``). Documents have their text extracted at once;
        images are re-encoded without metadata and described by the vision model in a job (``job``), after
        which ``description`` holds the text. 400 for a file that can't be used or past the limits
        (10 assets, 400,000 characters of text per session); 409 when the session is archived."""
        focus_group = get_focus_group_for_user(request.user, fg_id, for_write=True)
        upload = request.FILES.get("file")
        if upload is None:
            raise serializers.ValidationError({"file": ["Attach a file (multipart field “file”)."]})
        asset = asset_services.asset_add(focus_group=focus_group, upload=upload)
        asset = Asset.objects.select_related("job").get(pk=asset.pk)
        return Response(AssetDetailSerializer(asset).data, status=status.HTTP_201_CREATED)


class AssetDetailView(APIView):
    @extend_schema(
        tags=["focus groups"],
        operation_id="focus_groups_asset_retrieve",
        responses={200: AssetDetailSerializer, 404: _ERROR},
    )
    def get(self, request, fg_id: int, asset_id: int):
        """One asset with its full text (documents) or description (images)."""
        return Response(AssetDetailSerializer(_asset_for(request, fg_id, asset_id)).data)

    @extend_schema(
        tags=["focus groups"],
        operation_id="focus_groups_asset_destroy",
        responses={204: None, 404: _ERROR, 409: _ERROR},
    )
    def delete(self, request, fg_id: int, asset_id: int):
        """Remove an asset and its stored file. 409 when the session is archived."""
        asset = _asset_for(request, fg_id, asset_id, write=True)
        asset_services.asset_delete(asset=asset)
        return Response(status=status.HTTP_204_NO_CONTENT)
