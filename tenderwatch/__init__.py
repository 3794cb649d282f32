"""tenderwatch: Big Science calls for tender for small high-tech companies."""

__version__ = "0.1.0"
