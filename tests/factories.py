import factory
from factory.django import DjangoModelFactory

from cohorta.accounts.models import User
from cohorta.jobs.models import Job

DEFAULT_PASSWORD = "Correct-Horse-Battery-9"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"researcher{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(self, create, extracted, **kwargs):
        if create:
            self.save()


class JobFactory(DjangoModelFactory[Job]):
    class Meta:
        model = Job

    owner = factory.SubFactory(UserFactory)
    kind = "worker_check"
    params = factory.LazyFunction(lambda: {"steps": 2, "step_seconds": 0})
    progress_total = 2
