"""Admin registrations live beside the feature they serve; this module only loads them."""

from . import admin_datasets, admin_generation, admin_ranking, admin_training  # noqa: F401
