from django import forms
from django.conf import settings

from personas.models import BIG_FIVE, LIST_FIELDS, Folder, Persona, PersonaSource, TechSavviness
from personas.selectors import folder_choices_for_user

_AGE_MESSAGE = "Age must be between 13 and 110."
_SCORE_MESSAGE = "Scores run from 0 to 100."
LIST_HELP = "One per line, or separated by commas."


def split_list(text: str | None) -> list[str]:
    """One item per line; a single line may instead be comma-separated."""
    text = (text or "").strip()
    if not text:
        return []
    parts = text.splitlines() if "\n" in text else text.split(",")
    return [part.strip() for part in parts if part.strip()]


class BootstrapFormMixin(forms.BaseForm):
    """Bootstrap classes on every widget, and ``is-invalid`` on the ones with errors."""

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()


def _bootstrap(form: forms.BaseForm) -> None:
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.Select):
            css = "form-select"
        elif isinstance(widget, (forms.CheckboxInput, forms.RadioSelect)):
            css = "form-check-input"
        else:
            css = "form-control"
        widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()


def set_folder_choices(form: forms.BaseForm, *, user) -> None:
    """Offer the user's folders in the form's ``folder`` field (declared with no choices)."""
    field = form.fields["folder"]
    assert isinstance(field, forms.ModelChoiceField)  # declared as one on every form with a folder
    field.queryset = folder_choices_for_user(user=user)


class ListField(forms.CharField):
    """A textarea holding a list: one item per line or comma-separated."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", LIST_HELP)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3}))
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        return split_list(super().to_python(value))


def _score_field(label: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=0,
        max_value=100,
        error_messages={"min_value": _SCORE_MESSAGE, "max_value": _SCORE_MESSAGE},
        widget=forms.NumberInput(attrs={"min": 0, "max": 100, "placeholder": "0–100"}),
    )


class PersonaForm(BootstrapFormMixin, forms.Form):
    """The whole profile plus filing (folder, tags). Saved through the services, never ``form.save()``."""

    # Basic profile
    name = forms.CharField(max_length=120, error_messages={"required": "Every persona needs a name."})
    age = forms.IntegerField(
        min_value=13,
        max_value=110,
        error_messages={"required": "Age is required.", "min_value": _AGE_MESSAGE, "max_value": _AGE_MESSAGE},
        widget=forms.NumberInput(attrs={"min": 13, "max": 110}),
    )
    gender = forms.CharField(max_length=40, required=False)
    location = forms.CharField(
        max_length=120, required=False, widget=forms.TextInput(attrs={"placeholder": "e.g. Leeds, UK"})
    )
    occupation = forms.CharField(max_length=120, required=False)
    income_bracket = forms.CharField(
        max_length=60,
        required=False,
        label="Income bracket",
        widget=forms.TextInput(attrs={"placeholder": "e.g. £30–45k"}),
    )
    education = forms.CharField(max_length=120, required=False)
    household = forms.CharField(
        max_length=160,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. lives with partner, two kids"}),
    )

    # Personality: Big Five
    openness = _score_field("Openness")
    conscientiousness = _score_field("Conscientiousness")
    extraversion = _score_field("Extraversion")
    agreeableness = _score_field("Agreeableness")
    neuroticism = _score_field("Neuroticism")

    # Detailed profile
    values = ListField()
    interests = ListField()
    goals = ListField()
    frustrations = ListField()
    brand_affinities = ListField(label="Brand affinities")
    buying_behaviour = forms.CharField(
        required=False, label="Buying behaviour", widget=forms.Textarea(attrs={"rows": 3})
    )
    media_habits = forms.CharField(
        required=False, label="Media and channel habits", widget=forms.Textarea(attrs={"rows": 3})
    )
    tech_savviness = forms.ChoiceField(
        required=False, label="Tech savviness", choices=[("", "—"), *TechSavviness.choices]
    )
    backstory = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}))
    speaking_style = forms.CharField(
        required=False,
        label="Speaking style",
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": "e.g. short sentences, dry humour, says “to be fair” a lot"}
        ),
    )
    quote = forms.CharField(
        required=False,
        label="Representative quote",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "e.g. I’ll pay more if it lasts, but I want proof."}),
    )

    # Filing
    folder = forms.ModelChoiceField(queryset=Folder.objects.none(), required=False, empty_label="No folder")
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. pilot, london", widget=forms.TextInput())

    # (title, icon, note, [(field, column classes)]): the form's sections as the page shows them.
    GROUPS = (
        (
            "Basic profile",
            "bi-person-vcard",
            "",
            [
                ("name", "col-md-8"),
                ("age", "col-md-4"),
                ("gender", "col-md-4"),
                ("location", "col-md-8"),
                ("occupation", "col-md-6"),
                ("income_bracket", "col-md-6"),
                ("education", "col-md-6"),
                ("household", "col-md-6"),
            ],
        ),
        (
            "Personality",
            "bi-sliders",
            "Big Five scores from 0 (low) to 100 (high); leave blank if unknown.",
            [(trait, "col-6 col-md") for trait in BIG_FIVE],
        ),
        (
            "Detailed profile",
            "bi-person-lines-fill",
            "",
            [(name, "col-md-6") for name in (*LIST_FIELDS, "tech_savviness", "buying_behaviour", "media_habits")],
        ),
        (
            "Story and voice",
            "bi-chat-quote",
            "",
            [("backstory", "col-12"), ("speaking_style", "col-md-6"), ("quote", "col-md-6")],
        ),
    )

    def __init__(self, *args, user, persona: Persona | None = None, **kwargs):
        if persona is not None and "initial" not in kwargs:
            initial = persona.profile_data()
            initial["folder"] = persona.folder_id
            initial["tags"] = ", ".join(persona.tags or [])
            kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        set_folder_choices(self, user=user)
        _bootstrap(self)

    def clean_tags(self) -> list[str]:
        return list(dict.fromkeys(split_list(self.cleaned_data.get("tags", "").replace("\n", ","))))

    def clean_tech_savviness(self) -> str:
        return self.cleaned_data.get("tech_savviness") or ""

    def profile_data(self) -> dict:
        return {key: value for key, value in self.cleaned_data.items() if key not in ("folder", "tags")}

    def grouped(self) -> list[dict]:
        """The sections, with bound fields, for rendering the form."""
        return [
            {"title": title, "icon": icon, "note": note, "fields": [(self[name], css) for name, css in fields]}
            for title, icon, note, fields in self.GROUPS
        ]


class ImportForm(BootstrapFormMixin, forms.Form):
    file = forms.FileField(
        label="CSV or JSON file",
        help_text=(
            f"Up to {settings.UPLOAD_MAX_MB} MB and 1,000 personas, UTF-8. "
            "Use the columns of an export: name and age are required."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.json,text/csv,application/json"}),
    )
    folder = forms.ModelChoiceField(
        queryset=Folder.objects.none(),
        required=False,
        empty_label="Keep the folders named in the file",
        label="Put them in",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        set_folder_choices(self, user=user)
        _bootstrap(self)


class LibraryFilterForm(forms.Form):
    """The library's search and filters: read from the query string, never raises on junk."""

    q = forms.CharField(required=False, max_length=200)
    folder = forms.CharField(required=False, max_length=20)
    age_min = forms.IntegerField(required=False, min_value=0, max_value=130)
    age_max = forms.IntegerField(required=False, min_value=0, max_value=130)
    location = forms.CharField(required=False, max_length=120)
    occupation = forms.CharField(required=False, max_length=120)
    source = forms.ChoiceField(required=False, choices=[("", "Any source"), *PersonaSource.choices])
    tag = forms.CharField(required=False, max_length=60)

    FILTERS = ("q", "age_min", "age_max", "location", "occupation", "source", "tag")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _bootstrap(self)

    def selector_kwargs(self) -> dict:
        if not self.is_valid():
            # Keep what is valid, drop the rest: a bad age in the URL should not blank the library.
            data = {name: self.cleaned_data.get(name) for name in self.fields if name not in self.errors}
        else:
            data = dict(self.cleaned_data)
        return {
            "q": (data.get("q") or "").strip(),
            "folder": data.get("folder") or None,
            "source": data.get("source") or "",
            "age_min": data.get("age_min"),
            "age_max": data.get("age_max"),
            "location": (data.get("location") or "").strip(),
            "occupation": (data.get("occupation") or "").strip(),
            "tag": (data.get("tag") or "").strip(),
        }

    def has_filters(self) -> bool:
        kwargs = self.selector_kwargs()
        return any(kwargs[name] not in (None, "") for name in self.FILTERS)
