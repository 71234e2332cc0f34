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


class AccountDeleteForm(forms.Form):
    """Two deliberate acts: the password (it is really you) and a typed word (you really mean it)."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"class": "form-control", "autocomplete": "current-password"}),
    )
    confirm = forms.CharField(
        label="Type DELETE to confirm",
        widget=forms.TextInput(
            attrs={"class": "form-control font-monospace", "autocomplete": "off", "spellcheck": "false"}
        ),
    )

    def clean_confirm(self) -> str:
        from privacy.erasure import CONFIRMATION_WORD

        value = self.cleaned_data["confirm"].strip()
        if value != CONFIRMATION_WORD:
            raise forms.ValidationError(f"Type {CONFIRMATION_WORD} in capital letters to confirm.")
        return value
