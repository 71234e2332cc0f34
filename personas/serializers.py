"""API shapes for personas and folders. Data only: writes go through ``personas.services``."""

from rest_framework import serializers

from cohorta.api.serializers import FieldsBuiltOnce
from personas.models import PROFILE_FIELDS, Folder, Persona, PersonaSource


class PersonaSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    folder_name = serializers.CharField(source="folder.name", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Persona
        fields = [
            "id",
            *PROFILE_FIELDS,
            "folder",
            "folder_name",
            "tags",
            "source",
            "simulated",
            "brief",
            "brief_mismatch",
            "grounding",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


def _list_field() -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(max_length=300), required=False, max_length=50)


class PersonaInputSerializer(serializers.ModelSerializer):
    """A profile to create, or (with PATCH) the fields to change. Folder and tags are filing, not versions."""

    values = _list_field()
    interests = _list_field()
    goals = _list_field()
    frustrations = _list_field()
    brand_affinities = _list_field()
    folder_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="One of your folders, or null for no folder."
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=60), required=False, max_length=50)

    class Meta:
        model = Persona
        fields = [*PROFILE_FIELDS, "folder_id", "tags"]
        extra_kwargs = {"tech_savviness": {"allow_blank": True}}

    def profile_data(self) -> dict:
        return {field: value for field, value in self.validated_data.items() if field in PROFILE_FIELDS}


class PersonaFilterSerializer(serializers.Serializer):
    """The library's search and filters, as query parameters."""

    q = serializers.CharField(required=False, allow_blank=True, help_text="Search names, occupations, places, stories.")
    folder = serializers.RegexField(
        r"^(none|\d+)$", required=False, help_text="A folder id, or `none` for personas in no folder."
    )
    # The metaclass takes declared fields out of the class, so a field may share a Field or Serializer
    # attribute's name.
    source = serializers.ChoiceField(  # type: ignore[assignment]  # drf-stubs: see above
        choices=PersonaSource.choices, required=False
    )
    age_min = serializers.IntegerField(required=False, min_value=0, max_value=130)
    age_max = serializers.IntegerField(required=False, min_value=0, max_value=130)
    location = serializers.CharField(required=False, allow_blank=True)
    occupation = serializers.CharField(required=False, allow_blank=True)
    tag = serializers.CharField(required=False, allow_blank=True)


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class PersonaVersionSerializer(serializers.Serializer):
    """One version of a profile, and what changed from the one before it."""

    number = serializers.IntegerField(source="version.number")
    source = serializers.ChoiceField(  # type: ignore[assignment]  # drf-stubs: as `source` in the filters
        choices=PersonaSource.choices, source="version.source"
    )
    note = serializers.CharField(source="version.note")
    created_at = serializers.DateTimeField(source="version.created_at")
    is_current = serializers.BooleanField()
    data = serializers.DictField(  # type: ignore[assignment]  # drf-stubs: a declared field, as `source` above
        source="version.data", help_text="The full profile at this version."
    )
    changes = FieldChangeSerializer(many=True)


class PersonaMoveInputSerializer(serializers.Serializer):
    persona_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=1000)
    folder_id = serializers.IntegerField(allow_null=True, help_text="One of your folders, or null for no folder.")


class PersonaMoveOutputSerializer(serializers.Serializer):
    moved = serializers.IntegerField()
    folder_id = serializers.IntegerField(allow_null=True)


class PersonaImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A CSV or JSON file in the export format (UTF-8, at most 1,000 personas).")
    folder_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Put every persona in this folder. Without it, the folder named in each row is used.",
    )


class PersonaImportOutputSerializer(serializers.Serializer):
    imported = serializers.IntegerField()
    persona_ids = serializers.ListField(child=serializers.IntegerField())


class FolderSerializer(serializers.ModelSerializer):
    persona_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Folder
        fields = ["id", "name", "persona_count", "created_at"]
        read_only_fields = fields


class FolderInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
