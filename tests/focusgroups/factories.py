"""Focus-group sessions for tests.

fg = FocusGroupFactory(owner=owner)                    # a draft, no participants
fg = FocusGroupFactory(owner=owner, participants=3)    # with 3 new personas of the owner
add_participants(fg, [persona_a, persona_b])           # or these personas
add_message(fg, persona=persona_a, content="I'd pay for that.")
"""

import factory
from factory.django import DjangoModelFactory
from faker import Faker

from focusgroups.models import FocusGroup, Message, MessageRole, Participant
from personas.models import Persona
from tests.factories import UserFactory
from tests.personas.factories import PersonaFactory

_fake = Faker()


class FocusGroupFactory(DjangoModelFactory[FocusGroup]):
    class Meta:
        model = FocusGroup
        skip_postgeneration_save = True

    owner = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Session {n}: oat-milk subscription")
    objective = factory.Faker("sentence", nb_words=14)
    concept = ""

    @factory.post_generation
    def participants(self, create, extracted, **kwargs):
        """``participants=3`` adds 3 new personas of the owner; a list of personas adds those."""
        if create and extracted:
            add_participants(self, extracted)


def add_participants(focus_group: FocusGroup, personas: int | list[Persona] = 3) -> list[Participant]:
    """Add participants after the existing ones: ``personas`` is a count (new personas of the owner) or a list."""
    if isinstance(personas, int):
        personas = [PersonaFactory(owner=focus_group.owner) for _ in range(personas)]
    start = Participant.objects.filter(focus_group=focus_group).count()
    return Participant.objects.bulk_create(
        [
            Participant(focus_group=focus_group, persona=persona, position=start + i)
            for i, persona in enumerate(personas)
        ]
    )


def add_message(
    focus_group: FocusGroup, *, persona: Persona | None = None, content: str | None = None, role: str | None = None
) -> Message:
    """Append a saved turn (the next sequence number): a persona's answer, or the researcher's when no persona."""
    focus_group.last_sequence += 1
    FocusGroup.objects.filter(pk=focus_group.pk).update(last_sequence=focus_group.last_sequence)
    return Message.objects.create(
        focus_group=focus_group,
        sequence=focus_group.last_sequence,
        role=role or (MessageRole.PERSONA if persona else MessageRole.RESEARCHER),
        persona=persona,
        speaker_name=persona.name if persona else "Researcher",
        content=content if content is not None else _fake.sentence(nb_words=12),
    )
