from django import forms

from privacy.erasure import CONFIRMATION_WORD


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
        value = self.cleaned_data["confirm"].strip()
        if value != CONFIRMATION_WORD:
            raise forms.ValidationError(f"Type {CONFIRMATION_WORD} in capital letters to confirm.")
        return value
