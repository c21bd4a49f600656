"""Admin registrations live beside the feature they serve; this module only loads them."""

from .accounts import admin as accounts_admin  # noqa: F401
from .coders import admin as coders_admin  # noqa: F401
from .cycles import admin as cycles_admin  # noqa: F401
from .dashboard import admin as dashboard_admin  # noqa: F401
from .datasets import admin as datasets_admin  # noqa: F401
from .ranking import admin as ranking_admin  # noqa: F401
