"""Admin pages whose every add, change and delete is audited, with the values before and after."""

from django import forms
from django.contrib import admin
from django.db import transaction
from django.forms.models import model_to_dict

from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record


def change_reason_field() -> forms.CharField:
    return forms.CharField(
        label="Reason for this change",
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Optional. Kept in the audit log with the values before and after.",
    )


class AuditedModelForm(forms.ModelForm):
    """An admin change form with an optional reason that goes into the audit entry."""

    change_reason = change_reason_field()


def snapshot(obj) -> dict:
    """An object's editable fields (not its id: the entry names its target), for an audit entry."""
    values = model_to_dict(obj)
    values.pop(obj._meta.pk.name, None)
    return values


def object_change_audit(
    *, action: str, obj, before: dict, after: dict, actor, request=None, reason: str = ""
) -> AuditEntry | None:
    """Audit an admin add, change or delete of a pricing or settings row: only the fields that changed."""
    changed = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
    if not changed:
        return None
    return audit_record(
        action=action,
        actor=actor,
        target=obj,
        before={key: before.get(key) for key in changed if key in before},
        after={key: after.get(key) for key in changed if key in after},
        reason=reason,
        request=request,
    )


class AuditedAdminMixin(admin.ModelAdmin):
    """Audit-log every add, change and delete made through this admin, with the values before and after."""

    audit_action: str
    form = AuditedModelForm

    def save_model(self, request, obj, form, change):
        # Both states as stored (read back), so values compare and print alike (2.00 vs 2.000000).
        manager = type(obj)._default_manager
        before = snapshot(manager.get(pk=obj.pk)) if change else {}
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            object_change_audit(
                action=self.audit_action,
                obj=obj,
                before=before,
                after=snapshot(manager.get(pk=obj.pk)),
                actor=request.user,
                request=request,
                reason=form.cleaned_data.get("change_reason", ""),
            )

    def delete_model(self, request, obj):
        with transaction.atomic():
            # Audited first: deleting clears the object's primary key.
            object_change_audit(
                action=self.audit_action,
                obj=obj,
                before=snapshot(obj),
                after={"deleted": True},
                actor=request.user,
                request=request,
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
