"""Create the demo researcher and admin accounts (once), give the researcher a demo library, print the logins."""

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from backoffice.demo_content import SESSION_TITLE, demo_content_ensure
from billing.services import credits_grant
from cohorta.accounts.models import User

DEMO_ACCOUNTS = [
    # (email, display name, staff)
    ("demo@cohorta.local", "Dana Demo", False),
    ("admin@cohorta.local", "Alex Admin", True),
]
DEMO_CREDITS = 200
DEV_PASSWORD = "cohorta-demo-2026"  # noqa: S105 - printed for local demo use; refused when DEBUG=0


class Command(BaseCommand):
    help = (
        "Create the demo researcher and admin accounts and print how to log in. The researcher gets "
        f"{DEMO_CREDITS} credits, five personas and a finished focus group ('{SESSION_TITLE}') with its "
        "transcript, key themes and report, all written straight to the database (no AI calls). "
        "Idempotent: an account that exists is left as it is (its password too, unless --password is given), "
        "and nothing is created twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            help=f"Password for both accounts: set on new ones, and reset on existing ones (default for new "
            f"accounts in DEBUG: {DEV_PASSWORD}).",
        )
        parser.add_argument("--quiet", action="store_true", help="Do not print the logins.")
        parser.add_argument(
            "--no-content", action="store_true", help="Only the accounts and credits: no personas or session."
        )

    @transaction.atomic
    def handle(self, *args, **options):
        given = options["password"]
        existing = set(
            User.objects.filter(email__in=[email for email, *_ in DEMO_ACCOUNTS]).values_list("email", flat=True)
        )
        if not given and not settings.DEBUG and len(existing) < len(DEMO_ACCOUNTS):
            raise CommandError(
                "Refusing to create demo accounts with the default password when DEBUG=0: pass --password."
            )
        for email, name, staff in DEMO_ACCOUNTS:
            user = User.objects.filter(email=email).first()
            created = user is None
            if user is None:
                # A new account: staff or not, active, verified (mandatory email verification must not block it).
                user = User(email=email, name=name, is_staff=staff, is_superuser=staff, is_active=True)
                user.set_password(given or DEV_PASSWORD)
                user.save()
            elif given:
                # Someone asked for this password; otherwise whoever is logged in stays logged in.
                user.set_password(given)
                user.save(update_fields=["password"])
            EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
            content = None
            if not staff:
                # Enough to try generation and an autonomous run; once per account.
                credits_grant(
                    user=user, amount=DEMO_CREDITS, idempotency_key=f"demo-grant:{user.pk}", description="Demo credits"
                )
                if not options["no_content"]:
                    content = demo_content_ensure(user)
            if not options["quiet"]:
                role = "admin     " if staff else "researcher"
                if created or given:
                    verb = "created" if created else "ready  "
                    self.stdout.write(f"  {role} {verb}  {email}  /  {given or DEV_PASSWORD}")
                else:
                    reset = "reset it with: manage.py seed_demo --password …"
                    self.stdout.write(f"  {role} ready    {email}  (password unchanged; {reset})")
                if content is not None and (content.personas_created or content.session_created):
                    count = content.personas_created
                    made = [f"{count} persona{'s' if count != 1 else ''}"] if count else []
                    made += [f"the session “{SESSION_TITLE}”"] if content.session_created else []
                    self.stdout.write(f"             added {' and '.join(made)}")
