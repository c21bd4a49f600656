"""The two exceptions every service raises for input it refuses; views and the API turn them into 4xx."""


class ServiceError(Exception):
    """Input the service refuses: the caller gets a 400 with this message."""


class Conflict(ServiceError):
    """The request contradicts what is already stored: the caller gets a 409."""


class NotFound(ServiceError):
    """The thing the request names does not exist for the caller (a pair not assigned to them): a 404."""
