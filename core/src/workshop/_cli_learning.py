"""CLI commands of the learning machinery: lessons, check, new, validate, course."""

from __future__ import annotations

COMMANDS: list = []
