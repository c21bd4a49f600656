from knox.auth import TokenAuthentication


class CachedTokenAuthentication(TokenAuthentication):
    """knox's hashed, expiring tokens (``Authorization: Token <token>``)."""
