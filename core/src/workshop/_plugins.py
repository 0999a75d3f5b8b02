"""Discovery of workshop modules through the ``workshop.modules`` entry-point group.

A plugin that fails to import, whose hook raises, or whose declaration is malformed is
recorded as *broken* with its error; every other module keeps working.

A module name declared by two installed distributions is refused: neither is loaded, and
``workshop list``, ``run`` and ``doctor`` name both distributions and the ``pip uninstall``
that settles it. No precedence is guessed (which one came first would depend on the
order of ``sys.path``), so a package can never silently take another's place.
"""

from __future__ import annotations

import difflib
import importlib
import traceback
from dataclasses import dataclass
from importlib.metadata import entry_points

import pluggy

from . import _hookspecs
from ._declaration import DeclarationError, ModuleDeclaration

GROUP = "workshop.modules"


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded: where it came from and why."""

    name: str
    source: str
    error: str
    details: str = ""


class UnknownModule(LookupError):
    """No installed module has this name; the message suggests the closest one."""


class Registry:
    """The installed workshop modules, in discovery order.

    Arguments:
        plugins: extra plugin objects (modules or instances implementing the hooks),
            used by tests and by course authors composing modules by hand.
        use_entry_points: also discover installed plugins (default).
    """

    def __init__(self, plugins: tuple[object, ...] = (), use_entry_points: bool = True):
        self.pm = pluggy.PluginManager(_hookspecs.PROJECT)
        self.pm.add_hookspecs(_hookspecs)
        self.modules: dict[str, ModuleDeclaration] = {}
        self.plugin_of: dict[str, object] = {}
        self.source_of: dict[str, str] = {}
        self.broken: list[BrokenPlugin] = []
        if use_entry_points:
            by_name: dict[str, list] = {}
            for ep in entry_points(group=GROUP):
                by_name.setdefault(ep.name, []).append(ep)
            for name in sorted(by_name):
                eps = by_name[name]
                if len(eps) > 1:
                    self._refuse_clash(name, eps)
                else:
                    self._load_entry_point(eps[0])
        for plugin in plugins:
            self._add(plugin, source=getattr(plugin, "__name__", repr(plugin)), label=None)

    def _refuse_clash(self, name: str, eps: list) -> None:
        """Two or more distributions declare the same module: none is loaded, so that no
        package can silently take the place of another (which one won would depend on the
        order of sys.path)."""
        who = [f"{_distribution(ep)} ({ep.value})" for ep in eps]
        fix = " or ".join(f"pip uninstall {_distribution(ep).split()[0]}" for ep in eps
                          if _distribution(ep) != "an unnamed distribution")
        error = (f"{len(eps)} installed distributions declare the module {name!r}: {' and '.join(who)}; "
                 f"none of them is loaded, so that one never silently replaces another. Uninstall the one you do "
                 f"not want ({fix or 'pip uninstall it'})")
        source = "; ".join(f"{ep.value} (entry point {name!r} of {_distribution(ep)})" for ep in eps)
        self.broken.append(BrokenPlugin(name, source, error))

    def _load_entry_point(self, ep) -> None:
        source = f"{ep.value} (entry point {ep.name!r} of {_distribution(ep)})"
        try:
            plugin = ep.load()
        except BaseException as exc:  # a broken plugin must never take the launcher down
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.broken.append(BrokenPlugin(ep.name, source, _one_line(exc), traceback.format_exc()))
            return
        self._add(plugin, source=source, label=ep.name)

    def _add(self, plugin: object, source: str, label: str | None) -> None:
        name_hint = label or getattr(plugin, "__name__", "plugin")
        try:
            impl = getattr(plugin, "workshop_module", None)
            if impl is None:
                raise DeclarationError(
                    f"{source} does not define a 'workshop_module' hook; add "
                    "'@workshop.hookimpl def workshop_module(): return ModuleDeclaration(...)'"
                )
            decl = impl()
            if not isinstance(decl, ModuleDeclaration):
                raise DeclarationError(
                    f"workshop_module() returned {type(decl).__name__}, expected a ModuleDeclaration"
                )
            if label is not None and decl.name != label:
                raise DeclarationError(
                    f"entry point is named {label!r} but the declaration says {decl.name!r}; make them equal"
                )
            if decl.name in self.modules:
                raise DeclarationError(f"a module named {decl.name!r} is already installed (from "
                                       f"{self.source_of[decl.name]}); this one was not loaded, so that it "
                                       "does not replace that one. Rename one of them")
            self.pm.register(plugin, name=f"workshop-module-{decl.name}")
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.broken.append(BrokenPlugin(name_hint, source, _one_line(exc), traceback.format_exc()))
            return
        self.modules[decl.name] = decl
        self.plugin_of[decl.name] = plugin
        self.source_of[decl.name] = source

    def get(self, name: str) -> ModuleDeclaration:
        """The declaration of module ``name``; :class:`UnknownModule` with a suggestion otherwise."""
        if name in self.modules:
            return self.modules[name]
        for b in self.broken:
            if b.name == name:
                raise UnknownModule(f"module {name!r} is installed but broken: {b.error} (see 'workshop doctor')")
        raise UnknownModule(unknown_message("module", name, list(self.modules), hint="run 'workshop list' to see installed modules"))

    def doctor_reports(self, name: str) -> list[tuple[bool, str]]:
        plugin = self.plugin_of[name]
        hook = getattr(plugin, "workshop_doctor", None)
        if hook is None:
            return []
        try:
            return list(hook(declaration=self.modules[name]) or [])
        except Exception as exc:  # reported, never a crash
            return [(False, f"module health check raised {_one_line(exc)}")]


def _distribution(ep) -> str:
    """``"workshop-astro 0.1.0"``: the distribution that declares an entry point."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "an unnamed distribution"
    return f"{dist.name} {dist.version}"


def unknown_message(kind: str, name: str, known: list[str], hint: str = "") -> str:
    """``"no module 'astr'; did you mean 'astro'?"`` and friends."""
    msg = f"no {kind} {name!r}"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if close:
        msg += f"; did you mean {close[0]!r}?"
    elif known:
        msg += f"; choose one of: {', '.join(sorted(known))}"
    else:
        msg += f"; there are none installed"
    if hint:
        msg += f" ({hint})"
    return msg


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


_REGISTRY: Registry | None = None


def registry(refresh: bool = False) -> Registry:
    """The process-wide registry of installed modules (discovered once)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        importlib.invalidate_caches()
        _REGISTRY = Registry()
    return _REGISTRY


def set_registry(reg: Registry | None) -> None:
    """Replace the process-wide registry (tests, composed courses)."""
    global _REGISTRY
    _REGISTRY = reg
