import uuid
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.utils import timezone

from billing.models import CreditTransactionKind
from usage.analytics import MAX_DAYS, Period

MAX_CREDIT_CHANGE = 1_000_000
REASON_HELP = "Required. Kept in the audit log and on the ledger row."


class CreditChangeForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (CreditTransactionKind.GRANT, "Grant: give credits (goodwill, support, a sales deal)"),
            (CreditTransactionKind.ADJUSTMENT, "Correction: add or remove credits to fix a balance"),
        ],
        initial=CreditTransactionKind.GRANT,
        widget=forms.RadioSelect,
    )
    amount = forms.IntegerField(
        min_value=-MAX_CREDIT_CHANGE,
        max_value=MAX_CREDIT_CHANGE,
        help_text="Credits per selected user. Negative removes credits (corrections only); "
        "a balance never goes below zero.",
    )
    reason = forms.CharField(max_length=255, widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP)
    # Identifies this form: submitting it twice replays the first submission instead of paying twice.
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("token", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason: it is kept in the audit log.")
        return reason

    def clean(self):
        super().clean()
        data = self.cleaned_data
        amount, kind = data.get("amount"), data.get("kind")
        if amount == 0:
            self.add_error("amount", "Enter a number of credits other than 0.")
        elif amount is not None and amount < 0 and kind == CreditTransactionKind.GRANT:
            self.add_error("amount", "A grant adds credits. To remove credits, choose Correction.")
        return data


class QuotaForm(forms.Form):
    quota_usd = forms.DecimalField(
        label="Monthly LLM quota (USD)",
        required=False,
        min_value=Decimal(0),
        max_digits=10,
        decimal_places=2,
        help_text="Empty: use the default quota from app settings.",
    )
    reason = forms.CharField(max_length=255, widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason: it is kept in the audit log.")
        return reason


PRESETS = {
    "7d": ("Last 7 days", lambda today: Period.last_days(7, today=today)),
    "30d": ("Last 30 days", lambda today: Period.last_days(30, today=today)),
    "90d": ("Last 90 days", lambda today: Period.last_days(90, today=today)),
    "month": ("This month", lambda today: Period.this_month(today=today)),
    "last_month": ("Last month", lambda today: Period.last_month(today=today)),
}
DEFAULT_PRESET = "30d"


class PeriodForm(forms.Form):
    """The analytics date range: a preset, or from/to dates (inclusive, local time)."""

    preset = forms.ChoiceField(choices=[(key, label) for key, (label, _) in PRESETS.items()], required=False)
    granularity = forms.ChoiceField(
        choices=[("day", "Day"), ("week", "Week"), ("month", "Month")], required=False, initial="day"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these two are declared here rather than as attributes.
        self.fields["from"] = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
        self.fields["to"] = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        super().clean()
        data = self.cleaned_data
        start, end = data.get("from"), data.get("to")
        if start and end and start > end:
            raise forms.ValidationError("The start date is after the end date.")
        if start and end and (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(f"Choose a range of at most {MAX_DAYS} days.")
        return data

    def period(self) -> Period:
        """The chosen range; the default (last 30 days) when the form is empty or invalid."""
        today = timezone.localdate()
        if not self.is_valid():
            return PRESETS[DEFAULT_PRESET][1](today)
        data = self.cleaned_data
        if data.get("preset"):
            return PRESETS[data["preset"]][1](today)
        start, end = data.get("from"), data.get("to")
        if end is None:
            if start is None:
                return PRESETS[DEFAULT_PRESET][1](today)
            end = max(start, today)
        if start is None:
            start = end - timedelta(days=29)
        return Period(start, end)

    def granularity_value(self) -> str:
        return (self.is_valid() and self.cleaned_data.get("granularity")) or "day"
