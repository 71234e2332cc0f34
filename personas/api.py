"""The personas and folders API: thin views over ``personas.selectors`` / ``personas.services`` / ``personas.io``.

Another user's persona, folder or version is a 404, never a 403.
"""

from django.db import transaction
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.read_cache import cached_read
from personas import io, selectors, services
from personas.access import get_folder_for_user, get_persona_for_user, get_persona_version_for_user
from personas.models import Folder
from personas.serializers import (
    FolderInputSerializer,
    FolderSerializer,
    PersonaFilterSerializer,
    PersonaImportInputSerializer,
    PersonaImportOutputSerializer,
    PersonaInputSerializer,
    PersonaMoveInputSerializer,
    PersonaMoveOutputSerializer,
    PersonaSerializer,
    PersonaVersionSerializer,
)

TAGS = ["personas"]


def _folder_or_none(request, folder_id) -> Folder | None:
    return None if folder_id is None else get_folder_for_user(request.user, folder_id)


def _all_owned_or_404(request, ids: list[int]) -> list[int]:
    ids = list(dict.fromkeys(ids))
    if selectors.personas_for_user(user=request.user).filter(pk__in=ids).count() != len(ids):
        raise Http404
    return ids


# --- personas ------------------------------------------------------------------------------------


class PersonaListCreateView(generics.ListAPIView):
    """Your personas, with the library's search and filters."""

    serializer_class = PersonaSerializer

    def get_queryset(self):
        filters = PersonaFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        kwargs = dict(filters.validated_data)
        folder = kwargs.get("folder")
        if folder and folder != "none":
            get_folder_for_user(self.request.user, folder)
        return selectors.personas_for_user(user=self.request.user, **kwargs)

    @extend_schema(tags=TAGS, parameters=[PersonaFilterSerializer], responses=PersonaSerializer(many=True))
    @cached_read
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=TAGS, request=PersonaInputSerializer, responses={201: PersonaSerializer})
    def post(self, request):
        """Create a persona by hand (version 1). ``name`` and ``age`` are required."""
        data = PersonaInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        folder = _folder_or_none(request, data.validated_data.get("folder_id"))
        persona = services.persona_create(
            owner=request.user,
            data=data.profile_data(),
            folder=folder,
            tags=data.validated_data.get("tags"),
            note="Created via the API",
        )
        return Response(PersonaSerializer(persona).data, status=status.HTTP_201_CREATED)


class PersonaDetailView(APIView):
    @extend_schema(tags=TAGS, responses=PersonaSerializer)
    @cached_read
    def get(self, request, persona_id: int):
        return Response(PersonaSerializer(get_persona_for_user(request.user, persona_id)).data)

    @extend_schema(tags=TAGS, request=PersonaInputSerializer, responses=PersonaSerializer)
    def patch(self, request, persona_id: int):
        """Change profile fields (a new version when anything changes); ``folder_id``/``tags`` refile it."""
        persona = get_persona_for_user(request.user, persona_id)
        data = PersonaInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        folder = _folder_or_none(request, fields["folder_id"]) if "folder_id" in fields else services.UNCHANGED
        with transaction.atomic():
            persona = services.persona_update(persona=persona, data=data.profile_data(), note="Edited via the API")
            services.persona_set_meta(persona=persona, folder=folder, tags=fields.get("tags"))
        return Response(PersonaSerializer(persona).data)

    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request, persona_id: int):
        services.persona_delete(persona=get_persona_for_user(request.user, persona_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PersonaVersionsView(APIView):
    @extend_schema(tags=TAGS, responses=PersonaVersionSerializer(many=True))
    def get(self, request, persona_id: int):
        """Every version, newest first, each with its per-field changes from the one before."""
        persona = get_persona_for_user(request.user, persona_id)
        return Response(PersonaVersionSerializer(selectors.persona_versions(persona=persona), many=True).data)


class PersonaRestoreView(APIView):
    @extend_schema(tags=TAGS, request=None, responses=PersonaSerializer)
    def post(self, request, persona_id: int, number: int):
        """Make an earlier version current again, as a new version (nothing is lost)."""
        version = get_persona_version_for_user(request.user, number, persona_id=persona_id)
        persona = version.persona
        if version.number != persona.version:
            persona = services.persona_restore_version(persona=persona, version=version)
        return Response(PersonaSerializer(persona).data)


class PersonaMoveView(APIView):
    @extend_schema(tags=TAGS, request=PersonaMoveInputSerializer, responses=PersonaMoveOutputSerializer)
    def post(self, request):
        """Move personas to a folder (or to no folder). Any id that is not yours makes it a 404."""
        data = PersonaMoveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = _all_owned_or_404(request, data.validated_data["persona_ids"])
        folder = _folder_or_none(request, data.validated_data["folder_id"])
        moved = services.personas_move(owner=request.user, persona_ids=ids, folder=folder)
        return Response({"moved": moved, "folder_id": folder.pk if folder else None})


class _IgnoreFormatOverride(DefaultContentNegotiation):
    """``?format=`` names the export file format here, not a DRF renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class PersonaExportView(APIView):
    content_negotiation_class = _IgnoreFormatOverride

    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter("format", enum=["csv", "json"], default="csv", description="File format."),
            OpenApiParameter("folder", str, description="A folder id, or `none`: export that folder."),
            OpenApiParameter("ids", str, description="Comma-separated persona ids: export just these."),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, lists joined with ` | `."),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description='`{"version": 1, "personas": [...]}`'
            ),
        },
    )
    def get(self, request):
        """Download personas as a file: a selection, a folder, or everything."""
        params = request.query_params
        fmt = params.get("format") or "csv"
        try:
            ids = [int(part) for part in params.get("ids", "").split(",") if part.strip()]
        except ValueError:
            raise Http404 from None
        personas, label = io.export_selection(user=request.user, ids=ids, folder=params.get("folder"))
        response = io.export_response(personas, label=label, fmt=fmt)
        return response


class PersonaImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=TAGS,
        request={"multipart/form-data": PersonaImportInputSerializer},
        responses={
            201: PersonaImportOutputSerializer,
            400: OpenApiResponse(
                description='Nothing imported: `{"error": {"code": "import_invalid", "message": …, '
                '"extra": {"rows": [{"row": 7, "field": "age", "message": "must be between 13 and 110"}]}}}`'
            ),
        },
    )
    def post(self, request):
        """Import a CSV or JSON file, all or nothing: one bad row and nothing is created."""
        data = PersonaImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        folder = _folder_or_none(request, data.validated_data.get("folder_id"))
        created = io.personas_import(
            owner=request.user, filename=upload.name, content=io.upload_content(upload), folder=folder
        )
        return Response(
            {"imported": len(created), "persona_ids": [persona.pk for persona in created]},
            status=status.HTTP_201_CREATED,
        )


# --- folders -------------------------------------------------------------------------------------


class FolderListCreateView(generics.ListAPIView):
    """Your folders, with how many personas each holds."""

    serializer_class = FolderSerializer

    def get_queryset(self):
        return selectors.folders_for_user(user=self.request.user)

    @extend_schema(tags=TAGS, responses=FolderSerializer(many=True))
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=TAGS, request=FolderInputSerializer, responses={201: FolderSerializer})
    def post(self, request):
        """Create a folder. A name you already use is a 409."""
        data = FolderInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        folder = services.folder_create(owner=request.user, name=data.validated_data["name"])
        return Response(FolderSerializer(folder).data, status=status.HTTP_201_CREATED)


class FolderDetailView(APIView):
    @extend_schema(tags=TAGS, responses=FolderSerializer)
    def get(self, request, folder_id: int):
        return Response(FolderSerializer(get_folder_for_user(request.user, folder_id)).data)

    @extend_schema(tags=TAGS, request=FolderInputSerializer, responses=FolderSerializer)
    def patch(self, request, folder_id: int):
        """Rename a folder."""
        folder = get_folder_for_user(request.user, folder_id)
        data = FolderInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        folder = services.folder_rename(folder=folder, name=data.validated_data["name"])
        return Response(FolderSerializer(folder).data)

    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request, folder_id: int):
        """Delete a folder. Its personas are kept, in no folder."""
        services.folder_delete(folder=get_folder_for_user(request.user, folder_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
