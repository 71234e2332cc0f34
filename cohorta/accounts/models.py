import hashlib
import secrets
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields) -> "User":
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields) -> "User":
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields) -> "User":
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if not extra_fields["is_staff"] or not extra_fields["is_superuser"]:
            raise ValueError("A superuser must have is_staff=True and is_superuser=True")
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A Cohorta user: signs in with an email address, never a username.

    Role is researcher by default; staff users are admins (operators).
    """

    # Django's documented way to drop an inherited field; the stubs type the fields as always there.
    username = None  # type: ignore[assignment]  # django-stubs: a field removed by setting it to None
    first_name = None  # type: ignore[assignment]  # django-stubs: a field removed by setting it to None
    last_name = None  # type: ignore[assignment]  # django-stubs: a field removed by setting it to None
    email = models.EmailField("email address", unique=True)
    name = models.CharField("display name", max_length=150, blank=True)
    # Written only by billing.services, through conditional UPDATEs.
    credit_balance = models.PositiveIntegerField(default=0, editable=False)
    monthly_quota_usd = models.DecimalField(
        "monthly LLM quota (USD)",
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Overrides the default quota in app settings. Empty: use the default.",
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    # An email-only user needs its own manager (Django's documented custom-user pattern); the stubs
    # declare AbstractUser's username-based UserManager, whose create_user() takes a username first.
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]  # django-stubs: see above

    class Meta:
        ordering = ["email"]
        constraints = [
            models.CheckConstraint(condition=models.Q(credit_balance__gte=0), name="user_credit_balance_not_negative"),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs):
        # The balance is written only by billing.services' conditional UPDATEs.
        # A full save of an in-memory copy loaded before a spend would put the
        # old balance back, so saves of existing users never include it.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "credit_balance"
            ]
        super().save(*args, **kwargs)

    @property
    def role(self) -> str:
        return "admin" if self.is_staff else "researcher"

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@", 1)[0]

    def get_full_name(self) -> str:
        return self.display_name

    def get_short_name(self) -> str:
        return self.display_name


TOKEN_PREFIX = "coh_"  # noqa: S105 - a public marker, not a secret


def hash_token(raw: str) -> str:
    # Tokens are 32 random bytes: a fast hash is enough, a slow KDF would only
    # make every API request slower without adding safety.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A personal API token. Only its hash is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise the token in lists.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def generate_raw() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)
