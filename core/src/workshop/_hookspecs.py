"""All hook specifications of the workshop core, in one place.

A module plugin is a plain Python module, named by an entry point in the group
``workshop.modules``, that implements some of these hooks with ``@workshop.hookimpl``::

    # workshop_astro/plugin.py
    from workshop import hookimpl, ModuleDeclaration

    @hookimpl
    def workshop_module():
        return ModuleDeclaration(name="astro", title="...", ...)

    # pyproject.toml
    [project.entry-points."workshop.modules"]
    astro = "workshop_astro.plugin"

The plugin module must import quickly and must not import JAX or the module's science
code: the core imports it to list modules.
"""

from __future__ import annotations

import pluggy

PROJECT = "workshop"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def workshop_module():  # type: ignore[empty-body]
    """Declare one workshop module.

    Contract: return a :class:`workshop.ModuleDeclaration` built from plain data only
    (strings, numbers, lazy ``"package.module:function"`` references). Called once per
    plugin when the core discovers modules; it must not import JAX, download anything
    or touch the file system. If it raises, the plugin is reported as broken and every
    other module keeps working.
    """


@hookspec
def workshop_doctor(declaration):  # type: ignore[empty-body]
    """Report module-specific health for ``workshop doctor``.

    Contract: given this plugin's own declaration, return a list of
    ``(ok: bool, message: str)`` pairs (e.g. whether optional pretrained weights are
    cached), or ``None``. Called only by ``workshop doctor``; it may import the module's
    dependencies but must not download anything. An exception is reported as a failed
    line, never as a crash.
    """
