import random

import factory
from factory.django import DjangoModelFactory

from personas.models import PROFILE_FIELDS, Folder, Persona, PersonaSource
from personas.services import persona_create
from tests.factories import UserFactory

VALUES = ["Family", "Honesty", "Security", "Independence", "Sustainability", "Value for money", "Health", "Status"]
INTERESTS = ["Gardening", "Cycling", "Cooking", "True-crime podcasts", "Football", "Travel", "Baking", "Gaming"]
GOALS = ["Pay off the mortgage", "Eat healthier", "Retire early", "Learn Spanish", "Run a half marathon"]
FRUSTRATIONS = ["Hidden fees", "Slow delivery", "Pushy sales calls", "Apps that log you out", "Tiny print"]
BRANDS = ["IKEA", "Patagonia", "Aldi", "Apple", "Lidl", "Nike", "Oatly", "Decathlon", "Samsung"]
QUOTES = [
    "I'll pay a bit more if it lasts, but show me why.",
    "If I have to call someone to cancel, I'm not signing up.",
    "I read the reviews before I read the label.",
    "Honestly, convenience wins most weeks.",
    "I want to know where it comes from.",
]
INCOME = ["Under £20k", "£20–30k", "£30–45k", "£45–70k", "£70k+"]
EDUCATION = ["Secondary school", "Vocational diploma", "Bachelor's degree", "Master's degree", "PhD"]
HOUSEHOLD = ["Lives alone", "With partner", "With partner and two kids", "Single parent, one child", "House share"]


def _pick(pool: list[str], k: int = 3):
    return factory.LazyFunction(lambda: random.sample(pool, k))


class FolderFactory(DjangoModelFactory[Folder]):
    class Meta:
        model = Folder

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Segment {n}")


class PersonaFactory(DjangoModelFactory[Persona]):
    """A realistic persona. ``create()`` goes through ``persona_create`` so version 1 exists, as in the product;
    ``build()`` makes an unsaved one (for ``bulk_create``)."""

    class Meta:
        model = Persona

    owner = factory.SubFactory(UserFactory)
    folder = None
    tags = factory.LazyFunction(list)
    source = PersonaSource.MANUAL

    name = factory.Faker("name")
    age = factory.Faker("random_int", min=18, max=79)
    gender = factory.Faker("random_element", elements=["Female", "Male", "Non-binary"])
    location = factory.Faker("city", locale="en_GB")
    occupation = factory.Faker("job")
    income_bracket = factory.Faker("random_element", elements=INCOME)
    education = factory.Faker("random_element", elements=EDUCATION)
    household = factory.Faker("random_element", elements=HOUSEHOLD)
    openness = factory.Faker("random_int", min=0, max=100)
    conscientiousness = factory.Faker("random_int", min=0, max=100)
    extraversion = factory.Faker("random_int", min=0, max=100)
    agreeableness = factory.Faker("random_int", min=0, max=100)
    neuroticism = factory.Faker("random_int", min=0, max=100)
    values = _pick(VALUES)
    interests = _pick(INTERESTS)
    goals = _pick(GOALS, 2)
    frustrations = _pick(FRUSTRATIONS, 2)
    brand_affinities = _pick(BRANDS)
    buying_behaviour = factory.Faker("sentence", nb_words=14)
    media_habits = factory.Faker("sentence", nb_words=12)
    tech_savviness = factory.Faker("random_element", elements=["low", "medium", "high"])
    backstory = factory.Faker("paragraph", nb_sentences=4)
    speaking_style = factory.Faker("sentence", nb_words=8)
    quote = factory.Faker("random_element", elements=QUOTES)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        data = {field: kwargs.pop(field) for field in PROFILE_FIELDS if field in kwargs}
        persona = persona_create(
            owner=kwargs.pop("owner"),
            data=data,
            source=kwargs.pop("source"),
            folder=kwargs.pop("folder"),
            tags=kwargs.pop("tags"),
            grounding=kwargs.pop("grounding", None),
            simulated=kwargs.pop("simulated", False),
            brief=kwargs.pop("brief", None),
        )
        if kwargs:
            for key, value in kwargs.items():
                setattr(persona, key, value)
            persona.save(update_fields=list(kwargs))
        return persona


def bulk_personas(owner, count: int, **overrides) -> list[Persona]:
    """Many personas fast (no versions): for query-count and pagination tests."""
    personas = [PersonaFactory.build(owner=owner, **overrides) for _ in range(count)]
    return Persona.objects.bulk_create(personas, batch_size=500)
