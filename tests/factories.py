"""factory_boy factories for the data model."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from feedback import models

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"volunteer{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MaintainerFactory(UserFactory):
    @factory.post_generation
    def groups(obj, create, extracted, **kwargs):
        if create:
            obj.groups.add(Group.objects.get_or_create(name="maintainer")[0])


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Prompt

    text = factory.Sequence(lambda n: f'def f{n}(x):\n    """Return x plus {n}."""\n')
    language = "python"
    tests = factory.Sequence(lambda n: f"def check(candidate):\n    assert candidate(1) == {n + 1}\n")
    test_style = models.Prompt.TestStyle.HUMANEVAL
    entry_point = factory.Sequence(lambda n: f"f{n}")
    source = "codepref"
    external_id = factory.Sequence(lambda n: f"test/{n}")


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ModelVersion
        django_get_or_create = ("name",)

    name = "imported"
    backend = models.ModelVersion.Backend.IMPORTED


class CompletionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Completion

    prompt = factory.SubFactory(PromptFactory)
    model_version = factory.SubFactory(ModelVersionFactory)
    text = factory.Sequence(lambda n: f"    return x + {n}\n")


class PairFactory(factory.django.DjangoModelFactory):
    """A pair of two fresh completions of one prompt (A always has the lower id)."""

    class Meta:
        model = models.Pair

    prompt = factory.SubFactory(PromptFactory)
    language = factory.SelfAttribute("prompt.language")
    completion_a = factory.SubFactory(CompletionFactory, prompt=factory.SelfAttribute("..prompt"))
    completion_b = factory.SubFactory(CompletionFactory, prompt=factory.SelfAttribute("..prompt"))
    votes_wanted = 3


def _outcome(passed: bool) -> str:
    return models.Completion.Outcome.PASSED if passed else models.Completion.Outcome.FAILED


class PairWithOutcomesFactory(PairFactory):
    """A pair whose completions' tests ran: ``a_passed`` / ``b_passed`` set their outcomes (A passes by default)."""

    class Params:
        a_passed = True
        b_passed = False

    completion_a = factory.SubFactory(
        CompletionFactory,
        prompt=factory.SelfAttribute("..prompt"),
        outcome=factory.LazyAttribute(lambda c: _outcome(c.factory_parent.a_passed)),
        verdict_strength=models.Completion.VerdictStrength.STRONG,  # judged outside the sandbox
    )
    completion_b = factory.SubFactory(
        CompletionFactory,
        prompt=factory.SelfAttribute("..prompt"),
        outcome=factory.LazyAttribute(lambda c: _outcome(c.factory_parent.b_passed)),
        verdict_strength=models.Completion.VerdictStrength.STRONG,  # judged outside the sandbox
    )
    decided_by_tests = factory.LazyAttribute(lambda p: p.a_passed != p.b_passed)
