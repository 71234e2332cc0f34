from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditLogIsAppendOnly(Exception):
    """Raised when code tries to change or remove an audit entry."""


class AuditAction(models.TextChoices):
    CREDIT_GRANT = "credit_grant", "Credits granted"
    CREDIT_ADJUST = "credit_adjust", "Credits adjusted"
    CREDIT_PURCHASE = "credit_purchase", "Credits purchased"
    PAYMENT_REFUSED = "payment_refused", "Payment refused (nothing credited)"
    CREDIT_CLAWBACK = "credit_clawback", "Credits clawed back (refund)"
    REFUND = "refund", "Refund"
    QUOTA_CHANGE = "quota_change", "Quota changed"
    ROLE_CHANGE = "role_change", "Role changed"
    USER_ENABLE = "user_enable", "User enabled"
    USER_DISABLE = "user_disable", "User disabled"
    PRICING_CHANGE = "pricing_change", "Pricing changed"
    SETTINGS_CHANGE = "settings_change", "App settings changed"
    PACK_CHANGE = "pack_change", "Credit pack changed"
    ACCOUNT_DELETE = "account_delete", "Account deleted"
    DATA_EXPORT = "data_export", "Data exported"


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogIsAppendOnly("Audit entries cannot be updated.")

    def delete(self):
        raise AuditLogIsAppendOnly("Audit entries cannot be deleted.")


class AuditEntry(models.Model):
    """Who did what to money or access, with the state before and after. Append-only.

    ``actor`` is empty for system actions (webhooks, jobs); ``actor_email`` and
    ``target_repr`` keep the record readable after the rows they name are gone.
    """

    Action = AuditAction

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_actions"
    )
    actor_email = models.CharField(max_length=254, blank=True, help_text="Empty: the system (webhook, job).")
    action = models.CharField(max_length=40, choices=AuditAction.choices, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    # The user whose money or access changed, when there is one: lets the admin
    # list everything that happened to an account.
    subject_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_subject_of"
    )
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["subject_user", "created_at"], name="audit_subject_created")]

    def __str__(self) -> str:
        who = self.actor_email or "system"
        return f"{self.get_action_display()} by {who}: {self.target_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit entries cannot be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit entries cannot be deleted.")
