"""No API token outlives a new password, a deactivation or a demotion; maintainer access ends at once."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from knox.models import AuthToken
from rest_framework.test import APIClient

from feedback.api import authentication
from feedback.api.permissions import MAINTAINER_GROUP
from tests import factories

pytestmark = pytest.mark.django_db

DATASETS = "/api/v1/datasets/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    return client


def test_a_password_change_ends_every_token_of_the_account(maintainer):
    client = client_for(maintainer)
    AuthToken.objects.create(maintainer)
    assert client.get(DATASETS).status_code == 200
    maintainer.set_password("a new secret phrase")
    maintainer.save()
    assert AuthToken.objects.filter(user=maintainer).count() == 0
    assert client.get(DATASETS).status_code == 401


def test_a_save_that_changes_nothing_that_matters_keeps_the_tokens(maintainer):
    client_for(maintainer)
    maintainer.first_name = "Maya"
    maintainer.save()
    maintainer.save(update_fields=["last_login"])
    assert AuthToken.objects.filter(user=maintainer).count() == 1


@pytest.mark.parametrize("flag", ["is_superuser", "is_active", "is_staff"])
def test_clearing_a_flag_ends_the_tokens(db, flag):
    user = factories.UserFactory(username="root", is_superuser=True, is_staff=True)
    client = client_for(user)
    assert client.get(DATASETS).status_code == 200
    setattr(user, flag, False)
    user.save()
    assert AuthToken.objects.filter(user=user).count() == 0
    assert client.get(DATASETS).status_code == 401


@pytest.mark.parametrize("side", ["user", "group"])
def test_leaving_the_maintainer_group_ends_the_tokens(maintainer, side):
    client = client_for(maintainer)
    group = Group.objects.get(name=MAINTAINER_GROUP)
    if side == "user":
        maintainer.groups.remove(group)
    else:
        group.user_set.remove(maintainer)
    assert AuthToken.objects.filter(user=maintainer).count() == 0
    assert client.get(DATASETS).status_code == 401


def test_a_demoted_superuser_is_refused_even_with_a_cached_token_of_another_process(db):
    """Another process may hold the token and its user in its lookup cache for seconds: access still ends."""
    root = factories.UserFactory(username="root", is_superuser=True, is_staff=True)
    client = client_for(root)
    assert client.get(DATASETS).status_code == 200  # now cached in this process, with is_superuser=True
    # Demoted as another process would do it, unseen here: no signal reaches this process's cache.
    type(root).objects.filter(pk=root.pk).update(is_superuser=False)
    assert authentication._cached  # the lookup, with the old flags, is still cached
    assert client.get(DATASETS).status_code == 403


def test_other_accounts_keep_their_tokens(maintainer, volunteer):
    client_for(volunteer)
    maintainer.set_password("another new phrase")
    maintainer.save()
    assert AuthToken.objects.filter(user=volunteer).count() == 1
