"""Give (or take back) credits from the command line, through the ledger, with an audit entry."""

import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.models import CreditTransaction, CreditTransactionKind
from billing.services import credits_adjust, credits_grant
from cohorta.accounts.models import User
from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record
from cohorta.errors import ApplicationError

# Exit codes beyond Django's 1 (any CommandError), so scripts can tell the cases apart.
EXIT_BELOW_ZERO = 3
EXIT_KEY_CONFLICT = 4
KEY_PREFIX = "cli:"


class Command(BaseCommand):
    help = (
        "Grant credits to a user (or, with a negative number, take them back) through the credit ledger, "
        "and record who asked and why in the audit log (actor: system). A positive amount is a grant; a "
        "negative one is an adjustment, refused if the balance would go below zero. "
        "Pass --idempotency-key to make re-running safe: a second run with the same key changes nothing. "
        f"Exit codes: 0 done or already done, 1 bad input, {EXIT_BELOW_ZERO} balance would go below zero, "
        f"{EXIT_KEY_CONFLICT} key already used for a different grant."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="The account's email address.")
        parser.add_argument("--credits", type=int, required=True, help="Credits to add; negative to remove (e.g. -20).")
        parser.add_argument(
            "--reason", required=True, help="Why (kept in the ledger and the audit log), e.g. 'Outage 2026-11-20'."
        )
        parser.add_argument(
            "--idempotency-key",
            help=(
                "Any string unique to this grant, e.g. a ticket number. Running again with the same key is a "
                "no-op. Without it every run grants again."
            ),
        )

    def handle(self, *args, **options):
        amount: int = options["credits"]
        reason = options["reason"].strip()
        if amount == 0:
            raise CommandError("--credits must not be 0.")
        if not reason:
            raise CommandError("--reason must say why.")
        user = User.objects.filter(email__iexact=options["email"].strip()).first()
        if user is None:
            raise CommandError(f"No account with the email {options['email']!r}.")
        raw_key = options["idempotency_key"] or uuid.uuid4().hex
        key = f"{KEY_PREFIX}{raw_key}"[:200]

        existing = CreditTransaction.objects.filter(idempotency_key=key).first()
        if existing is not None:
            self._replayed(existing, user=user, amount=amount)
            return
        try:
            entry = self._record(user=user, amount=amount, key=key, reason=reason)
        except ApplicationError as exc:
            if exc.code == "balance_would_go_negative":
                raise CommandError(f"Refused: {exc.message}", returncode=EXIT_BELOW_ZERO) from None
            if exc.code == "idempotency_conflict":
                raise CommandError(exc.message, returncode=EXIT_KEY_CONFLICT) from None
            raise CommandError(exc.message) from None
        verb = "Granted" if amount > 0 else "Removed"
        self.stdout.write(
            f"{verb} {abs(amount)} credit(s) {'to' if amount > 0 else 'from'} {user.email}: "
            f"balance now {entry.balance_after} (ledger entry #{entry.pk}, key {key})."
        )

    @transaction.atomic
    def _record(self, *, user: User, amount: int, key: str, reason: str) -> CreditTransaction:
        """The ledger row and its audit entry commit together, or neither does."""
        balance_before = User.objects.filter(pk=user.pk).values_list("credit_balance", flat=True).get()
        if amount > 0:
            entry = credits_grant(
                user=user,
                amount=amount,
                kind=CreditTransactionKind.GRANT,
                idempotency_key=key,
                reference="cli:grant_credits",
                description=reason,
                created_by=None,
            )
            action = AuditEntry.Action.CREDIT_GRANT
        else:
            entry = credits_adjust(user=user, delta=amount, idempotency_key=key, description=reason, created_by=None)
            action = AuditEntry.Action.CREDIT_ADJUST
        audit_record(
            action=action,
            actor=None,
            target=entry,
            subject_user=user,
            before={"balance": balance_before},
            after={"balance": entry.balance_after, "delta": entry.delta, "idempotency_key": key},
            reason=f"{reason} (manage.py grant_credits)",
        )
        return entry

    def _replayed(self, existing: CreditTransaction, *, user: User, amount: int) -> None:
        if existing.user_id != user.pk or existing.delta != amount:
            raise CommandError(
                f"The key {existing.idempotency_key!r} was already used for ledger entry #{existing.pk} "
                f"({existing.delta:+d} for another account or amount). Use a new key.",
                returncode=EXIT_KEY_CONFLICT,
            )
        self.stdout.write(
            f"Already done: ledger entry #{existing.pk} ({existing.delta:+d} credits for {user.email}) "
            "has this key. Nothing changed."
        )
