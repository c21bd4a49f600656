"""Admin registrations live beside the feature they serve; this module only loads them."""

from . import admin_datasets, admin_generation, admin_prompts, admin_training  # noqa: F401
from .accounts import admin as accounts_admin  # noqa: F401
from .ranking import admin as ranking_admin  # noqa: F401
