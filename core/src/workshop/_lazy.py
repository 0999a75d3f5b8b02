"""Lazy ``"package.module:attribute"`` references, resolved only when used."""

from __future__ import annotations

import importlib
from typing import Any


class ReferenceError_(ImportError):
    """A lazy reference could not be resolved (the message says why and where)."""


def resolve(ref: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute.

    Example::

        >>> resolve("os.path:join")("a", "b")
        'a/b'
    """
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ReferenceError_(f"{ref!r} is not a reference of the form 'package.module:attribute'")
    mod_name, attr_path = ref.split(":")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ReferenceError_(f"cannot import {mod_name!r} for reference {ref!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ReferenceError_(
                f"module {mod_name!r} has no attribute {attr_path!r} (reference {ref!r})"
            ) from None
    return obj
