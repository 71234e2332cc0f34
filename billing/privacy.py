"""Erasure for billing records: a deleted account's money history stays, without its email.

The credit ledger is append-only (``CreditTransactionQuerySet.update`` raises) because
amounts and balances must never change after the fact. Erasure is the one exception:
the law lets us keep the rows for accounting, but not who they belonged to. These
functions change ``user_email`` and nothing else, and only for one user's rows.
"""

from django.apps import apps

from billing.models import CreditTransaction


def ledger_anonymise_user(*, user_id: int, replacement: str) -> int:
    """Replace the email on every ledger row of ``user_id``; returns how many rows.

    Goes through ``_base_manager`` (a plain Manager, without the append-only guard),
    and writes only ``user_email``: deltas, balances, kinds and keys stay as they were.
    The ``user`` link itself is cleared by the foreign key's SET_NULL when the user
    row is deleted.
    """
    return CreditTransaction._base_manager.filter(user_id=user_id).update(user_email=replacement)


def billing_anonymise_user(*, user_id: int, replacement: str) -> dict[str, int]:
    """The ledger, plus any other billing record that keeps a copy of the user's email
    next to a ``user`` link (checkout sessions): those keep their amounts, lose the email."""

    counts = {"ledger_entries": ledger_anonymise_user(user_id=user_id, replacement=replacement)}
    for model in apps.get_app_config("billing").get_models():
        if model is CreditTransaction:
            continue
        names = {field.name for field in model._meta.get_fields()}
        if {"user", "user_email"} <= names:
            assert model._meta.model_name is not None  # set on every installed model
            counts[model._meta.model_name] = model._base_manager.filter(user_id=user_id).update(user_email=replacement)
    return counts
