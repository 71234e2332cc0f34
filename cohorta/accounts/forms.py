from django import forms

from cohorta.accounts.models import User


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["name"]
        labels = {"name": "Display name"}
        help_texts = {"name": "How Cohorta greets you. Leave empty to use the part of your email before the @."}
        widgets = {"name": forms.TextInput(attrs={"class": "form-control", "autocomplete": "name"})}


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Token name",
        help_text="Something to recognise it by, e.g. “analysis notebook”.",
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": "analysis notebook"}),
    )
