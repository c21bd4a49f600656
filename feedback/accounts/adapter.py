"""allauth's account adapter, with codepref's username rule (``usernames.py``)."""

from allauth.account.adapter import DefaultAccountAdapter

from feedback.client_ip import client_ip

from .usernames import username_check


class AccountAdapter(DefaultAccountAdapter):
    def clean_username(self, username: str, shallow: bool = False) -> str:
        username = super().clean_username(username, shallow=shallow)
        return username if shallow else username_check(username)

    def get_client_ip(self, request) -> str:
        # The same address the lock-out and the API throttles count (X-Forwarded-For only through NUM_PROXIES).
        return client_ip(request) or super().get_client_ip(request)
