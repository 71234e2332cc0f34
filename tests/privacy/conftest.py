"""An account with a bit of everything, for the export and deletion tests.

``rich_account`` gives the owner the demo library (five personas, one finished session with a guide,
transcript, themes and report), an extra persona version, an uploaded image, a ledger with a grant
and a spend, usage events, an API token, a verified email address and a TOTP authenticator; and
``other_user`` some content of their own that must never be touched.
"""

from dataclasses import dataclass

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.core.files.base import ContentFile

from backoffice.demo_content import SESSION_TITLE, demo_content_ensure
from billing.services import credits_grant, credits_spend
from cohorta.accounts.services import api_token_create
from focusgroups.models import Asset, AssetKind, FocusGroup
from personas.models import Persona
from personas.services import persona_update
from tests.focusgroups.factories import FocusGroupFactory, add_message
from tests.personas.factories import PersonaFactory
from usage.services import TokenUsage, usage_event_record

PNG = b"\x89PNG\r\n\x1a\n" + b"demo-image-bytes" * 8


@dataclass
class RichAccount:
    user: object
    focus_group: FocusGroup
    asset: Asset
    token: str
    theirs: FocusGroup


@pytest.fixture
def rich_account(owner, other_user) -> RichAccount:
    demo_content_ensure(owner)
    focus_group = FocusGroup.objects.get(owner=owner, title=SESSION_TITLE)
    priya = Persona.objects.get(owner=owner, name="Priya Shah")
    persona_update(persona=priya, data={"quote": "Fewer bottles, same clean."}, note="Edited by hand")
    asset = Asset(focus_group=focus_group, kind=AssetKind.IMAGE, filename="shelf photo.png", content_type="image/png")
    asset.image.save("image-abc.png", ContentFile(PNG), save=False)
    asset.size = len(PNG)
    asset.save()

    credits_grant(user=owner, amount=100, idempotency_key="test-grant", description="Welcome")
    credits_spend(user=owner, amount=30, idempotency_key="test-spend", description="Autonomous run")
    for tokens in (1200, 3400):
        usage_event_record(
            feature="persona_response",
            provider="test",
            model="gpt-5.4",
            tokens=TokenUsage(input_tokens=tokens, output_tokens=200),
            user=owner,
            focus_group_id=focus_group.pk,
        )
    _, token = api_token_create(user=owner, name="notebook")
    EmailAddress.objects.create(user=owner, email=owner.email, verified=True, primary=True)
    Authenticator.objects.create(user=owner, type=Authenticator.Type.TOTP, data={"secret": "not-a-real-secret"})
    SocialAccount.objects.create(user=owner, provider="okta", uid="okta-user-42")

    # Another researcher's things: deleting or exporting the owner must not touch or show them.
    mine_not = PersonaFactory(owner=other_user, name="Oscar's persona")
    theirs = FocusGroupFactory(owner=other_user, title="Oscar's session", participants=[mine_not])
    add_message(theirs, persona=mine_not, content="Oscar's persona speaking.")
    credits_grant(user=other_user, amount=10, idempotency_key="other-grant")
    usage_event_record(feature="summary", provider="test", model="gpt-5.4", tokens=TokenUsage(), user=other_user)
    return RichAccount(user=owner, focus_group=focus_group, asset=asset, token=token, theirs=theirs)
