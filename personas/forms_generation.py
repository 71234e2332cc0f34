from django import forms

from personas.forms import set_folder_choices
from personas.models import Folder


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget",
            MultipleFileInput(attrs={"class": "form-control", "multiple": True, "accept": ".pdf,.docx,.txt,.md,.csv"}),
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class BriefForm(forms.Form):
    description = forms.CharField(
        label="Who do you want to hear from?",
        min_length=10,
        max_length=4000,
        widget=forms.Textarea(
            attrs={
                "class": "form-control",
                "rows": 4,
                "placeholder": "UK parents of young children who cook on weeknights and are "
                "curious about meal kits but worried about price.",
            }
        ),
    )
    count = forms.IntegerField(
        label="How many personas",
        min_value=1,
        max_value=20,
        initial=8,
        widget=forms.NumberInput(attrs={"class": "form-control", "min": 1, "max": 20}),
    )
    age_min = forms.IntegerField(
        label="Youngest",
        required=False,
        min_value=18,
        max_value=90,
        widget=forms.NumberInput(attrs={"class": "form-control", "placeholder": "18"}),
    )
    age_max = forms.IntegerField(
        label="Oldest",
        required=False,
        min_value=18,
        max_value=90,
        widget=forms.NumberInput(attrs={"class": "form-control", "placeholder": "90"}),
    )
    locations = forms.CharField(
        label="Locations",
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": "Leeds, Bristol, Glasgow"}),
    )
    gender_mix = forms.CharField(
        label="Gender mix",
        required=False,
        max_length=120,
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": "roughly even"}),
    )
    folder = forms.ModelChoiceField(
        label="Save into folder",
        queryset=Folder.objects.none(),
        required=False,
        empty_label="No folder",
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    # The metaclass takes declared fields out of the class, so a field may share a BaseForm attribute's name
    # (``form.files`` stays the uploaded files).
    files = MultipleFileField(  # type: ignore[assignment]  # django-stubs: see above
        label="Ground them in your research (optional)",
        required=False,
        help_text="PDF, DOCX, TXT, MD or a CSV of customer records or segments; up to 5 files.",
    )
    image_description = forms.CharField(required=False, widget=forms.HiddenInput())

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        set_folder_choices(self, user=owner)

    def clean(self):
        data = super().clean()
        low, high = self.cleaned_data.get("age_min"), self.cleaned_data.get("age_max")
        if low and high and low > high:
            self.add_error("age_max", "The oldest age must be at least the youngest.")
        return data


class ImageForm(forms.Form):
    image = forms.FileField(
        label="Image",
        widget=forms.ClearableFileInput(attrs={"class": "form-control", "accept": "image/jpeg,image/png,image/webp"}),
    )


class ModifyForm(forms.Form):
    instruction = forms.CharField(min_length=3, max_length=1000)
