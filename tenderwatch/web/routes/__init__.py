"""Route modules of the web admin, one per area; each declares its access with ``deps.require``."""
