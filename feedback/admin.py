"""Admin registrations live beside the feature they serve; this module only loads them."""

from . import admin_generation, admin_ranking, admin_training  # noqa: F401
from .accounts import admin as accounts_admin  # noqa: F401
from .datasets import admin as datasets_admin  # noqa: F401
