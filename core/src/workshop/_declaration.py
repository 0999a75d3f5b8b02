"""The plain-data declaration a module plugin hands to the core.

Everything here is strings, numbers and tuples of small frozen dataclasses, so that
listing modules never imports a module's science code (or JAX). Demos, checks and
processors are *lazy references* of the form ``"package.module:attribute"``, resolved
only when used (see :func:`workshop.resolve`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMAND_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


class DeclarationError(ValueError):
    """A module's declaration is malformed (the message says which field and why)."""


@dataclass(frozen=True)
class Lesson:
    """One lesson: a single-source notebook shipped inside the module package.

    Arguments:
        id: short identifier, also the notebook's file stem (``"01_forward"``).
        title: the title shown to participants.
        source: path of the jupytext percent-format source, relative to the package
            (``"lessons/01_forward.py"``).
        minutes: planned teaching time.
    """

    id: str
    title: str
    source: str
    minutes: int = 15


@dataclass(frozen=True)
class Check:
    """One exercise check.

    Arguments:
        name: the check's name inside its module (``"vp_marginal"``); participants
            call ``check("astro.vp_marginal", fn)``.
        ref: lazy reference to the check function, ``"workshop_astro.checks.toy:vp_marginal"``.
            The function takes the participant's object and raises
            :class:`workshop.checking.CheckFailed` (or ``NotAttempted``) when it is wrong.
        lesson: id of the lesson the exercise belongs to.
        summary: one line saying what the exercise asks.
        hint: a nudge for a participant who is stuck before even trying, shown by
            ``workshop check MODULE.CHECK`` and with a "not attempted" verdict (rustlings'
            ``hint``); failures carry their own, more specific hints.
    """

    name: str
    ref: str
    lesson: str = ""
    summary: str = ""
    hint: str = ""


@dataclass(frozen=True)
class Demo:
    """A runnable end-to-end demo (what ``workshop run MODULE DEMO`` calls).

    Arguments:
        name: the demo's name (``"toy"``).
        ref: lazy reference to a function taking a :class:`workshop.RunContext` and
            returning a dict of results (numbers and paths) or ``None``.
        summary: one line saying what it shows.
        minutes: typical wall time on the ``cpu`` preset.
    """

    name: str
    ref: str
    summary: str = ""
    minutes: float = 1.0


@dataclass(frozen=True)
class Command:
    """A command line a module adds to the launcher: ``workshop MODULE NAME ...``.

    The command itself is a ``click.Command`` in the module's package, found through a
    lazy reference: listing modules or printing ``workshop --help`` never imports it.
    Keep the file it lives in light (``click`` at module level, the science code
    imported inside the command), so that ``workshop MODULE NAME --help`` is fast too.

    Arguments:
        name: the command's name (``"embed"``): lower case, digits, ``-`` and ``_``.
        ref: lazy reference to the ``click.Command``, ``"workshop_protein.cli:embed"``.
        summary: one line saying what it does (shown by ``workshop --help`` and
            ``workshop info MODULE`` without importing the command).

    Example::

        Command("embed", "workshop_protein.cli:embed", "per-residue and pooled embeddings of a FASTA")
    """

    name: str
    ref: str
    summary: str = ""


@dataclass(frozen=True)
class DataEntry:
    """One file of a module's data registry; every entry is verified by a sha256.

    Exactly one of ``embedded`` and ``url`` is set. The sha256 is declared here, except
    for a remote file whose publisher gives none: such an entry sets ``pin=True`` and
    no sha256, and the first download's sha256 and size are pinned on this machine (or
    read from an instructor's pins file, ``WORKSHOP_PINS``); every later use is verified
    against the pin (see :mod:`workshop._pins`).

    Arguments:
        name: file name, unique within the module (``"hdf_stamps_32.npz"``).
        sha256: the file's sha256, lower-case hex (``None`` only with ``pin=True``).
        embedded: path relative to the module package of a file shipped inside it.
        url: where a remote file downloads from.
        size: size in bytes, when known (shown before downloading).
        description: what the file is.
        source: where it comes from and under which licence.
        pin: the file has no published checksum: pin it on first use.
    """

    name: str
    sha256: str | None = None
    embedded: str | None = None
    url: str | None = None
    size: int | None = None
    description: str = ""
    source: str = ""
    pin: bool = False

    @property
    def remote(self) -> bool:
        return self.url is not None


@dataclass(frozen=True)
class HardwareNeeds:
    """What a module needs to run well.

    Arguments:
        min_ram_gb: memory below which the demos are likely to fail.
        accelerator: ``"none"``, ``"optional"``, ``"recommended"`` or ``"required"``.
        note: anything else a participant should know.
    """

    min_ram_gb: float = 2.0
    accelerator: str = "optional"
    note: str = ""


@dataclass(frozen=True)
class ModuleDeclaration:
    """Everything a workshop module declares, as plain data.

    Arguments:
        name: registered name (``"astro"``): lower case, digits and underscores.
        title: human title.
        summary: a few sentences on what participants learn.
        minutes: planned teaching time.
        package: the import package (``"workshop_astro"``); embedded data and lesson
            sources are found relative to it.
        distribution: the pip distribution name (``"workshop-astro"``).
        path: folder of the module inside the repository (``"modules/astro_diffusion"``),
            used for install cells and Colab links.
        lessons, checks, demos, datasets, commands: see :class:`Lesson`, :class:`Check`,
            :class:`Demo`, :class:`DataEntry`, :class:`Command`.
        default_demo: the demo ``workshop run MODULE`` runs; defaults to the first.
        presets: preset name -> one line saying what the module does at that size.
        hardware: :class:`HardwareNeeds`.
    """

    name: str
    title: str
    summary: str
    minutes: int
    package: str
    distribution: str = ""
    path: str = ""
    lessons: tuple[Lesson, ...] = ()
    checks: tuple[Check, ...] = ()
    demos: tuple[Demo, ...] = ()
    datasets: tuple[DataEntry, ...] = ()
    commands: tuple[Command, ...] = ()
    default_demo: str | None = None
    presets: dict[str, str] = field(default_factory=dict)
    hardware: HardwareNeeds = field(default_factory=HardwareNeeds)

    def __post_init__(self) -> None:
        for attr in ("lessons", "checks", "demos", "datasets", "commands"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        validate_declaration(self)

    def demo(self, name: str | None = None) -> Demo:
        """The demo called ``name`` (the default demo when ``None``)."""
        if not self.demos:
            raise KeyError(f"module {self.name!r} declares no demos")
        wanted = name or self.default_demo or self.demos[0].name
        for d in self.demos:
            if d.name == wanted:
                return d
        raise KeyError(wanted)

    def dataset(self, name: str) -> DataEntry:
        for e in self.datasets:
            if e.name == name:
                return e
        raise KeyError(name)


def validate_declaration(decl: ModuleDeclaration) -> None:
    """Raise :class:`DeclarationError` naming the first malformed field."""

    def fail(msg: str) -> None:
        raise DeclarationError(f"module {decl.name!r}: {msg}")

    if not isinstance(decl.name, str) or not _NAME.match(decl.name):
        raise DeclarationError(
            f"module name {decl.name!r} is invalid: use lower-case letters, digits and "
            "underscores, starting with a letter (e.g. 'astro')"
        )
    if not isinstance(decl.minutes, int) or decl.minutes < 0:
        fail(f"minutes must be a non-negative int, got {decl.minutes!r}")
    if not decl.package.isidentifier():
        fail(f"package {decl.package!r} is not an importable package name")
    for kind, items in (("lesson", decl.lessons), ("check", decl.checks), ("demo", decl.demos), ("dataset", decl.datasets),
                        ("command", decl.commands)):
        key = "id" if kind == "lesson" else "name"
        seen: set[str] = set()
        for item in items:
            expected = {"lesson": Lesson, "check": Check, "demo": Demo, "dataset": DataEntry, "command": Command}[kind]
            if not isinstance(item, expected):
                fail(f"{kind}s must be {expected.__name__} objects, got {type(item).__name__}")
            ident = getattr(item, key)
            if ident in seen:
                fail(f"{kind} {ident!r} is declared twice")
            seen.add(ident)
    for item in (*decl.checks, *decl.demos, *decl.commands):
        if not _REF.match(item.ref):
            fail(f"{item.name!r} has reference {item.ref!r}; expected 'package.module:function'")
    for c in decl.commands:
        if not isinstance(c.name, str) or not _COMMAND_NAME.match(c.name):
            fail(f"command name {c.name!r} is invalid: use lower-case letters, digits, '-' and '_', "
                 "starting with a letter (e.g. 'embed')")
    lesson_ids = {l.id for l in decl.lessons}
    for c in decl.checks:
        if c.lesson and c.lesson not in lesson_ids:
            fail(f"check {c.name!r} names lesson {c.lesson!r}, which is not declared")
    for e in decl.datasets:
        if e.pin:
            if e.sha256 is not None or e.url is None:
                fail(f"dataset {e.name!r}: pin=True is for remote files without a published sha256 "
                     "(give a url and no sha256)")
        elif not _SHA256.match(e.sha256 or ""):
            fail(f"dataset {e.name!r} has no valid sha256 (64 lower-case hex digits; "
                 "or pin=True for a remote file whose publisher gives none)")
        if (e.embedded is None) == (e.url is None):
            fail(f"dataset {e.name!r} must set exactly one of 'embedded' and 'url'")
    if decl.default_demo is not None and decl.default_demo not in {d.name for d in decl.demos}:
        fail(f"default_demo {decl.default_demo!r} is not among the declared demos")
