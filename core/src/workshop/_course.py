"""Course manifests: which modules, in which order, for how long, with which breaks.

A course is a small TOML file::

    title = "JAX & Generative AI for Science"
    start = "13:30"                      # optional, HH:MM

    [[agenda]]
    module = "intro"
    minutes = 60                         # optional: defaults to the module's own minutes

    [[agenda]]
    break = "Coffee"
    minutes = 15

Another course lists other modules (any installed workshop module, or one to install);
``workshop course show FILE`` prints the agenda with clock times.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path


class CourseError(ValueError):
    """A course manifest is malformed; the message names the file, the item and the fix."""


@dataclass(frozen=True)
class Item:
    """One agenda item: a module (``module`` set) or a break (``label`` set)."""

    minutes: int | None
    module: str | None = None
    label: str | None = None
    note: str = ""

    @property
    def is_break(self) -> bool:
        return self.module is None


@dataclass(frozen=True)
class Course:
    """A parsed manifest: ``title``, optional ``start`` (``"HH:MM"``) and the agenda items."""

    title: str
    items: tuple[Item, ...]
    start: str | None = None
    description: str = ""
    path: Path | None = None

    @property
    def modules(self) -> list[str]:
        return [i.module for i in self.items if i.module]


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _minutes_of_clock(text: str, where: str) -> int:
    m = _CLOCK.match(str(text).strip())
    if not m:
        raise CourseError(f"{where}: start {text!r} is not a time like '09:00'")
    return int(m[1]) * 60 + int(m[2])


def parse_course(text: str, where: str = "course") -> Course:
    """Parse a manifest's TOML text (see the module docstring)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CourseError(f"{where}: not valid TOML: {exc}") from None
    unknown = set(data) - {"title", "start", "description", "agenda"}
    if unknown:
        raise CourseError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; use title, start, description, agenda")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise CourseError(f"{where}: needs a title, e.g. title = \"My course\"")
    start = data.get("start")
    if start is not None:
        _minutes_of_clock(start, where)
    agenda = data.get("agenda")
    if not isinstance(agenda, list) or not agenda:
        raise CourseError(f"{where}: needs an agenda: one [[agenda]] table per module or break")
    items = []
    for n, raw in enumerate(agenda, start=1):
        here = f"{where}, agenda item {n}"
        if not isinstance(raw, dict):
            raise CourseError(f"{here}: write it as an [[agenda]] table")
        extra = set(raw) - {"module", "break", "minutes", "note"}
        if extra:
            raise CourseError(f"{here}: unknown key(s) {', '.join(sorted(extra))}; use module or break, minutes, note")
        if ("module" in raw) == ("break" in raw):
            raise CourseError(f"{here}: set exactly one of 'module' (a module name) and 'break' (its label)")
        minutes = raw.get("minutes")
        if minutes is not None and (not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0):
            raise CourseError(f"{here}: minutes must be a positive whole number, got {minutes!r}")
        if "break" in raw:
            if minutes is None:
                raise CourseError(f"{here}: a break needs its minutes")
            items.append(Item(minutes, label=str(raw["break"]) or "Break", note=str(raw.get("note", ""))))
        else:
            if not isinstance(raw["module"], str) or not re.fullmatch(r"[a-z][a-z0-9_]*", raw["module"]):
                raise CourseError(f"{here}: module {raw['module']!r} is not a module name like 'astro'")
            items.append(Item(minutes, module=raw["module"], note=str(raw.get("note", ""))))
    return Course(title.strip(), tuple(items), start, str(data.get("description", "")))


def load_course(path: Path) -> Course:
    """Read and parse a manifest file."""
    path = Path(path)
    from ._environment import ConfigError, read_text_input

    try:
        text = read_text_input(path, "the course file")
    except ConfigError as exc:
        raise CourseError(f"cannot read the course file: {exc}") from None
    c = parse_course(text, where=str(path))
    return Course(c.title, c.items, c.start, c.description, path)


def _clock(minutes: int) -> str:
    return f"{(minutes // 60) % 24:02d}:{minutes % 60:02d}"


def _duration(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def render_agenda(course: Course, start: str | None = None, modules: dict | None = None) -> tuple[list[str], list[str]]:
    """``(lines, missing)``: the agenda with clock times, and the modules not installed.

    Arguments:
        course: the parsed manifest.
        start: overrides the manifest's start time (``"HH:MM"``; default 09:00).
        modules: name -> declaration (default: the installed modules).
    """
    if modules is None:
        from ._plugins import registry

        modules = registry().modules
    clock = _minutes_of_clock(start or course.start or "09:00", "start")
    lines = [course.title]
    if course.description:
        lines.append(course.description)
    lines.append("")
    missing: list[str] = []
    teaching = pauses = 0
    unknown = False  # a module of unknown length: later clock times are unknown too
    for item in course.items:
        decl = modules.get(item.module) if item.module else None
        minutes = item.minutes or (decl.minutes if decl is not None else None)
        if minutes is None or unknown:
            unknown = True
            span = "--:-- -> --:--"
        else:
            span = f"{_clock(clock)} -> {_clock(clock + minutes)}"
        length = f"{minutes:>3} min" if minutes is not None else "  ? min"
        if item.is_break:
            pauses += minutes or 0
            label = f"({item.label or 'Break'})"
            lines.append(f"{span}  {label:<12} {length}" + (f"  {item.note}" if item.note else ""))
        else:
            teaching += minutes or 0
            if decl is None:
                missing.append(item.module)
                dist = f"workshop-{item.module.replace('_', '-')}"
                lines.append(f"{span}  {item.module:<12} {length}  (not installed: pip install {dist})")
            else:
                from .progress import passed_checks

                done = len(passed_checks(decl.name) & {c.name for c in decl.checks})
                prog = f"  [{done}/{len(decl.checks)} checks]" if decl.checks else ""
                lines.append(f"{span}  {decl.name:<12} {length}  {decl.title}{prog}")
                for lesson in decl.lessons:
                    lines.append(f"{'':16}- {lesson.id} ({lesson.minutes} min): {lesson.title}")
            if item.note:
                lines.append(f"{'':16}note: {item.note}")
        clock += minutes or 0
    lines.append("")
    if unknown:
        lines.append(f"Known so far: {_duration(teaching)} of modules and {_duration(pauses)} of breaks; install "
                     "the missing modules (or give their minutes in the course file) for the full timing.")
    else:
        lines.append(f"Ends {_clock(clock)}: {_duration(teaching + pauses)} in all "
                     f"({_duration(teaching)} of modules, {_duration(pauses)} of breaks).")
    return lines, missing
