"""Create (or refresh) the demo accounts, give the researcher a demo library, print the logins. Idempotent."""

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.services import credits_grant
from cohorta.accounts.management.commands._demo_content import SESSION_TITLE, demo_content_ensure
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
        "Idempotent: running it again resets the demo passwords and creates nothing new."
    )

    def add_arguments(self, parser):
        parser.add_argument("--password", help=f"Password for both accounts (default in DEBUG: {DEV_PASSWORD}).")
        parser.add_argument("--quiet", action="store_true", help="Do not print the logins.")
        parser.add_argument(
            "--no-content", action="store_true", help="Only the accounts and credits: no personas or session."
        )

    @transaction.atomic
    def handle(self, *args, **options):
        password = options["password"]
        if not password:
            if not settings.DEBUG:
                raise CommandError(
                    "Refusing to create demo accounts with the default password when DEBUG=0: pass --password."
                )
            password = DEV_PASSWORD
        for email, name, staff in DEMO_ACCOUNTS:
            user, created = User.objects.get_or_create(email=email, defaults={"name": name})
            user.name = user.name or name
            user.is_staff = user.is_superuser = staff
            user.is_active = True
            user.set_password(password)
            user.save()
            # Verified, so mandatory email verification does not block the demo.
            EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
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
                verb = "created" if created else "ready  "
                self.stdout.write(f"  {role} {verb}  {email}  /  {password}")
                if content is not None and (content.personas_created or content.session_created):
                    made = [f"{content.personas_created} persona(s)"] if content.personas_created else []
                    made += [f"the session “{SESSION_TITLE}”"] if content.session_created else []
                    self.stdout.write(f"             added {' and '.join(made)}")
