"""Checks of the arguments of the module's public functions: the core's
:mod:`workshop.guards` (each raises before any JAX work starts, naming the argument, the
value received and what is expected)."""

from workshop.guards import count, float_array, positive

__all__ = ["count", "positive", "float_array"]
