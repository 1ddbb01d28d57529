"""searchlab: one engine for neural architecture search and evolutionary model compression."""

__version__ = "0.1.0"
