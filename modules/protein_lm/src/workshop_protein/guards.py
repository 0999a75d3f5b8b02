"""Checks of the arguments of the module's public functions.

Each check raises before any JAX work starts, with a message naming the argument, the
value received and what is expected: ``TypeError`` for a value of the wrong kind,
``ValueError`` for one of the right kind outside what the function can use. They return
the value converted (``count`` returns an ``int``), so a caller writes::

    steps = guards.count("steps", steps)

instead of a check of its own.
"""

from __future__ import annotations


import numpy as np
from workshop.guards import count, fraction, positive
from workshop.guards import shown as _shown

__all__ = ["PositionOutOfRange", "count", "positive", "fraction", "protein", "square_map", "index_positions"]


class PositionOutOfRange(IndexError, ValueError):
    """A residue position outside the sequence (an ``IndexError`` and a ``ValueError``)."""


def protein(name: str, seq) -> str:
    """A non-empty amino-acid string (the letters themselves are checked by ``tokenize``)."""
    if not isinstance(seq, str):
        raise TypeError(f"{name} must be an amino-acid string such as 'MKTAYIAKQR', got {type(seq).__name__} "
                        f"{_shown(seq)}")
    if not seq.strip():
        raise ValueError(f"{name} is empty: give an amino-acid string such as 'MKTAYIAKQR'")
    return seq


def square_map(name: str, a) -> np.ndarray:
    """A finite ``(L, L)`` real array with ``L >= 2`` (a contact map), as ``float32``."""
    arr = np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric (L, L) array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 2:
        raise ValueError(f"{name} must be a square (L, L) map with L >= 2, got shape {arr.shape}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds {int((~np.isfinite(arr)).sum())} values that are NaN or infinite")
    return arr


def index_positions(name: str, positions, length: int) -> np.ndarray:
    """0-based residue positions below ``length``, as an ``int32`` array."""
    arr = np.asarray(list(positions))
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be whole 0-based positions, got {arr.dtype} values such as {_shown(arr[0])}")
    arr = arr.astype(np.int32)
    if arr.size and (arr.min() < 0 or arr.max() >= length):
        raise PositionOutOfRange(f"{name} must be 0-based positions in 0..{length - 1} (the sequence has {length} "
                         f"residues); got {arr.min()}..{arr.max()}")
    return arr
