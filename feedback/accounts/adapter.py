"""allauth's account adapter, with codepref's username rule (``usernames.py``)."""

from allauth.account.adapter import DefaultAccountAdapter

from .usernames import username_check


class AccountAdapter(DefaultAccountAdapter):
    def clean_username(self, username: str, shallow: bool = False) -> str:
        username = super().clean_username(username, shallow=shallow)
        return username if shallow else username_check(username)
