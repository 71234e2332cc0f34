from django.conf import settings
from django.db import models
from django.utils import timezone


class DataExport(models.Model):
    """A ZIP of everything a user has, built by an ``account_export`` job.

    The file lives in private storage under a random name and is served only
    through an authenticated view that checks the owner; it is removed when it
    expires, when a newer export replaces it, or when the account is deleted.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="data_exports")
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="data_export")
    # Storage name; empty until the job has written the file, and again once it is removed.
    file = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "created_at"], name="data_export_owner_created")]

    def __str__(self) -> str:
        return f"Data export {self.pk} ({self.job_id})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_downloadable(self) -> bool:
        return bool(self.file) and self.removed_at is None and not self.is_expired
