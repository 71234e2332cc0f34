"""The session settings form (create and edit) and the participant picker's request parsing.

Participants arrive from the page in three parts, so the picker works with and without JavaScript:

- ``persona_ids``: one hidden input per chosen persona (the chips), in the order they were chosen;
- ``shown`` + ``pick``: the ids listed in the picker and the ones ticked there. Without JavaScript a tick or
  an untick only shows up here; with JavaScript the chips are kept in step and these agree with them;
- ``unpick``: the chip whose remove button was pressed (a submit button when there is no JavaScript).
"""

from decimal import Decimal

from django import forms

from cohorta.errors import ApplicationError
from focusgroups import services
from focusgroups.models import (
    CONFORMITY_QUESTION_MAX,
    DEFAULT_CONFORMITY_OPTIONS,
    MAX_PARTICIPANTS,
    MIN_PARTICIPANTS,
    FocusGroup,
)
from focusgroups.quality import conformity
from personas.forms import BootstrapFormMixin

REFRESH_KEYS = ("_search", "unpick")


def _tokens(values) -> list[str]:
    return [str(value).strip() for value in values if str(value).strip()]


def chosen_persona_ids(data) -> list[str]:
    """The chosen persona ids (as given, duplicates kept so the service can report them) from a picker POST/GET."""
    ids = _tokens(data.getlist("persona_ids"))
    shown = set(_tokens(data.getlist("shown")))
    picked = _tokens(data.getlist("pick"))
    chosen = [pk for pk in ids if pk not in shown or pk in picked]
    chosen += [pk for pk in dict.fromkeys(picked) if pk not in chosen]
    unpick = (data.get("unpick") or "").strip()
    return [pk for pk in chosen if pk != unpick] if unpick else chosen


def is_refresh(data) -> bool:
    """A no-JavaScript search or chip removal: re-show the form, save nothing."""
    return any(key in data for key in REFRESH_KEYS)


class FocusGroupForm(BootstrapFormMixin, forms.Form):
    """Title, objective, concept, spending cap and participants. Saved through ``focusgroups.services``."""

    title = forms.CharField(
        max_length=services.TITLE_MAX,
        error_messages={"required": "Give the session a title."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. Oat-milk subscription: first reactions"}),
    )
    objective = forms.CharField(
        label="Research objective",
        max_length=services.OBJECTIVE_MAX,
        error_messages={"required": "Say what the research needs to learn."},
        help_text="What you need to learn. The AI moderator and the discussion guide work from this.",
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "placeholder": "e.g. Understand why young families would or would not pay monthly for oat milk.",
            }
        ),
    )
    concept = forms.CharField(
        label="Product or concept",
        required=False,
        max_length=services.CONCEPT_MAX,
        help_text="Optional. What the participants are shown: the product, offer, message or idea under discussion.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    cost_cap_usd = forms.DecimalField(
        label="Spending cap (USD)",
        required=False,
        min_value=Decimal("0.01"),
        max_digits=10,
        decimal_places=2,
        help_text="Optional. AI work in this session stops when its LLM cost reaches this amount.",
        error_messages={"min_value": "The spending cap must be more than $0 (or leave it empty)."},
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01", "placeholder": "No cap"}),
    )
    # The conformity check (focusgroups/quality/conformity.py): shown in a card of its own, not with the research.
    measure_conformity = forms.BooleanField(
        label="Measure conformity",
        required=False,
        help_text="Off: no private answers are asked and nothing is charged.",
    )
    conformity_question = forms.CharField(
        label="Key question",
        required=False,
        max_length=CONFORMITY_QUESTION_MAX,
        initial=conformity.DEFAULT_QUESTION,
        widget=forms.TextInput(attrs={"placeholder": conformity.DEFAULT_QUESTION}),
    )
    conformity_options = forms.CharField(
        label="Answer options",
        required=False,
        initial="\n".join(DEFAULT_CONFORMITY_OPTIONS),
        help_text="One per line, 2 to 6.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    CONFORMITY_FIELDS = ("measure_conformity", "conformity_question", "conformity_options")

    def __init__(self, data=None, *, user, focus_group: FocusGroup | None = None, chosen=None, **kwargs):
        check = conformity.conformity_get(focus_group) if focus_group is not None else None
        if focus_group is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "title": focus_group.title,
                "objective": focus_group.objective,
                "concept": focus_group.concept,
                "cost_cap_usd": focus_group.cost_cap_usd,
            }
            if check is not None:
                kwargs["initial"].update(
                    measure_conformity=True,
                    conformity_question=check.question,
                    conformity_options="\n".join(check.options),
                )
        super().__init__(data, **kwargs)
        if focus_group is not None and check is not None and check.started:
            # Asked already: answers to two different questions would not compare, so it stays as it was.
            for name in self.CONFORMITY_FIELDS:
                self.fields[name].disabled = True
        self.user = user
        self.focus_group = focus_group
        self.persona_not_found = False
        self.participant_errors: list[str] = []
        if chosen is not None:
            self.chosen_ids = list(chosen)
        elif data is not None:
            self.chosen_ids = chosen_persona_ids(data)
        elif focus_group is not None:
            self.chosen_ids = [str(pk) for pk in focus_group.participants.values_list("persona_id", flat=True)]
        else:
            self.chosen_ids = []
        for name, field in self.fields.items():
            css = "form-check-input" if name == "measure_conformity" else "form-control"
            field.widget.attrs["class"] = f"{field.widget.attrs.get('class', '')} {css}".strip()

    def clean(self):
        cleaned = super().clean()
        try:
            services.participants_check(owner=self.user, persona_ids=self.chosen_ids)
        except ApplicationError as exc:
            self.add_participant_error(exc)
        data = self.cleaned_data
        if data.get("measure_conformity"):
            try:
                question, options = conformity.conformity_clean(
                    question=data.get("conformity_question"), options=data.get("conformity_options")
                )
            except ApplicationError as exc:
                for field, errors in (exc.extra.get("fields") or {}).items():
                    for error in errors:
                        self.add_error(field, error)
            else:
                data["conformity_question"], data["conformity_options"] = question, options
        return cleaned

    @property
    def research_fields(self):
        """The fields of the research card (the budget and conformity have cards of their own)."""
        return [field for field in self if field.name != "cost_cap_usd" and field.name not in self.CONFORMITY_FIELDS]

    def add_participant_error(self, exc: ApplicationError) -> None:
        if exc.status_code == 404:
            self.persona_not_found = True
            message = "One of the chosen personas no longer exists. Check the participants and save again."
            messages = [message]
        else:
            messages = (exc.extra.get("fields") or {}).get("persona_ids") or [exc.message]
        self.participant_errors.extend(messages)
        for message in messages:
            self.add_error(None, forms.ValidationError(message, code="participants"))

    def apply_service_errors(self, exc: ApplicationError) -> None:
        """Show a service's refusal on the form: field errors on their fields, participants on the picker."""
        fields = dict(exc.extra.get("fields") or {})
        if exc.status_code == 404 or "persona_ids" in fields or exc.code == "participant_has_spoken":
            self.add_participant_error(exc)
            fields.pop("persona_ids", None)
            if exc.status_code == 404 or exc.code == "participant_has_spoken":
                return
        for field, errors in fields.items():
            for error in errors:
                self.add_error(field if field in self.fields else None, error)
        if not fields and not self.participant_errors:
            self.add_error(None, exc.message)

    @property
    def other_errors(self) -> list[str]:
        """Non-field errors that are not about participants (those show on the picker)."""
        return [str(error) for error in self.non_field_errors() if error not in self.participant_errors]

    @property
    def limits(self) -> tuple[int, int]:
        return MIN_PARTICIPANTS, MAX_PARTICIPANTS
