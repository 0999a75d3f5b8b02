"""The ``workshop`` command.

Exit codes (also in ``workshop --help``; every command runs under the one error path of
:mod:`workshop._errors`):

* 0: success.
* 1: the command ran and found a problem (a failed check, a failed validation, a
  demo that raised, data that could not be fetched), or an unexpected error: one
  paragraph naming it, its traceback written to a log (``--debug`` prints it).
* 2: a usage error: unknown module, demo, check or preset, bad option value, bad
  environment variable (:mod:`workshop._environment`), unusable path or input file.
* 130: interrupted with Ctrl-C (work in progress was saved where the demo supports it).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import click

from . import _environment
from . import _cli_learning
from ._cli_common import EPILOG, get_module
from ._cli_modules import LauncherGroup, refused_message
from ._errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, UsageProblem, reported_errors, set_debug
from ._plugins import registry, unknown_message


__all__ = ["main", "reported_errors", "UsageProblem", "EXIT_OK", "EXIT_PROBLEM", "EXIT_USAGE", "EXIT_INTERRUPTED"]




@click.group(cls=LauncherGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="workshop-core", prog_name="workshop")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error (also WORKSHOP_DEBUG=1).")
def main(debug: bool) -> None:
    """The JAX & Generative AI for Science workshop.

    \b
    Start here:
      workshop list              installed modules and your progress
      workshop doctor            is this machine ready?
      workshop run astro         run a module's main demo
      workshop lessons astro     get the notebooks
    """
    set_debug(debug)
    _environment.flag("WORKSHOP_DEBUG")  # a value that is neither on nor off is a usage error


def _progress(decl) -> str:
    if not decl.checks:
        return "-"
    try:
        from .progress import passed_checks

        done = passed_checks(decl.name) & {c.name for c in decl.checks}
        return f"{len(done)}/{len(decl.checks)}"
    except _environment.ConfigError:
        raise  # a bad WORKSHOP_PROGRESS is the user's to fix: said, not hidden
    except Exception:
        return f"?/{len(decl.checks)}"


def _quick_data_state(decl) -> str:
    """Cached or not, without hashing (hashing is what `fetch` and `doctor` do)."""
    from .data import ModuleData

    remote = [e for e in decl.datasets if e.remote]
    if not decl.datasets:
        return "none"
    if not remote:
        return "embedded"
    md = ModuleData.of(decl)
    cached = sum(md.path(e.name).is_file() for e in remote)
    return f"{cached}/{len(remote)} remote cached" + (" + embedded" if len(remote) < len(decl.datasets) else "")


@main.command("list", epilog=EPILOG)
def list_cmd() -> None:
    """Installed modules: title, minutes, lessons/checks/demos, data, progress."""
    reg = registry()
    if not reg.modules and not reg.broken:
        click.echo("No workshop modules are installed. Install one, e.g.: pip install workshop-intro")
    if reg.modules:
        rows = [("module", "title", "min", "lessons", "checks", "demos", "data", "progress")]
        for d in reg.modules.values():
            rows.append((d.name, d.title, str(d.minutes), str(len(d.lessons)), str(len(d.checks)),
                         str(len(d.demos)), _quick_data_state(d), _progress(d)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        widths[1] = min(widths[1], 60)
        for i, r in enumerate(rows):
            cells = [c if len(c) <= widths[j] else c[: widths[j] - 1] + "…" for j, c in enumerate(r)]
            line = "  ".join(c.ljust(widths[j]) for j, c in enumerate(cells)).rstrip()
            click.echo(click.style(line, bold=True) if i == 0 else line)
    for b in reg.broken:
        click.echo(click.style(f"broken: {b.name}", fg="red", bold=True) + f"  {b.error}\n        from {b.source}")
    if reg.broken:
        click.echo("A broken plugin does not affect the others. Reinstall it or see 'workshop doctor'.")


@main.command(epilog=EPILOG)
@click.argument("module")
def info(module: str) -> None:
    """Everything MODULE declares: lessons, checks, demos, data, presets, hardware."""
    d = get_module(module)
    click.echo(click.style(f"{d.name}: {d.title}", bold=True))
    click.echo(f"{d.summary}\n")
    click.echo(f"package {d.package} ({d.distribution or d.package}), {d.minutes} minutes")
    click.echo(f"hardware: at least {d.hardware.min_ram_gb:g} GiB RAM; accelerator {d.hardware.accelerator}"
               + (f"; {d.hardware.note}" if d.hardware.note else ""))
    click.echo(f"\nLessons ({len(d.lessons)}):")
    for l in d.lessons:
        click.echo(f"  {l.id:<24} {l.minutes:>3} min  {l.title}")
    click.echo(f"\nChecks ({len(d.checks)}):")
    for c in d.checks:
        click.echo(f"  {d.name}.{c.name:<30} [{c.lesson}] {c.summary}")
    default = d.demo().name if d.demos else None
    click.echo(f"\nDemos ({len(d.demos)}):")
    for dm in d.demos:
        mark = " (default)" if dm.name == default else ""
        click.echo(f"  {dm.name:<14} ~{dm.minutes:g} min  {dm.summary}{mark}")
    if d.commands:
        click.echo(f"\nCommands ({len(d.commands)}):")
        for c in d.commands:
            click.echo(f"  workshop {d.name} {c.name:<10} {c.summary}")
        if main.clashes(d):
            click.echo(click.style("  refused: ", fg="red", bold=True) + refused_message(d))
    click.echo(f"\nData ({len(d.datasets)}):")
    for e in d.datasets:
        where = "embedded" if e.embedded else e.url
        size = f", {e.size / 1e6:.1f} MB" if e.size else ""
        check = "pinned on first use (no published checksum)" if e.pin else f"sha256 {e.sha256[:16]}…"
        click.echo(f"  {e.name} ({where}{size}) {check}")
        if e.description:
            click.echo(f"      {e.description}")
    if d.presets:
        click.echo("\nPresets:")
        for k, v in d.presets.items():
            click.echo(f"  {k:<5} {v}")


@main.command(epilog=EPILOG)
@click.argument("module")
@click.argument("demo", required=False)
@click.option("--preset", help="Size of the run: tiny, cpu, gpu or full (default: detected).")
@click.option("--out", type=click.Path(), default=None,
              help="Folder for figures and results (default: ./workshop-out/MODULE-DEMO).")
@click.option("--budget", default=None, help="Time budget for training, e.g. 5m, 90s, 1h (default: the demo's own).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Random seed (0 to 2^32 - 1).")
@click.option("--model", default=None, help="The model to use, for demos that offer a choice "
              "(e.g. workshop run protein --model esm2_t6_8M_UR50D; default: the preset's).")
def run(module: str, demo: str | None, preset: str | None, out: str | None, budget: str | None, seed: int,
        model: str | None) -> None:
    """Run a DEMO of MODULE (its default demo when DEMO is omitted)."""
    from . import hardware as hwmod
    from ._lazy import resolve
    from ._run import DemoOptionError, RunContext

    d = get_module(module)
    if not d.demos:
        raise UsageProblem(f"module {module!r} declares no demos")
    try:
        dm = d.demo(demo)
    except KeyError:
        raise UsageProblem(unknown_message(f"demo of module {module!r} named", demo or "", [x.name for x in d.demos],
                                           hint=f"'workshop info {module}' lists them")) from None
    # Bad values raise ConfigError (BudgetError, PresetError): usage errors, exit code 2.
    seconds = hwmod.parse_duration(budget) if budget is not None else None
    if preset is not None:
        hwmod.validate_preset(preset)
    if model is not None and not model.strip():
        raise UsageProblem("--model was given an empty name; name a model (see 'workshop info "
                           f"{module}') or leave --model out for the preset's")
    _environment.preset()  # a bad WORKSHOP_PRESET is refused before JAX starts
    out = Path("workshop-out") / f"{module}-{dm.name}" if out is None else _environment.folder_path(out, "--out")
    _environment.writable_folder(out, "--out", "choose a folder you can write to with --out")
    click.echo("Detecting hardware (imports JAX)…")
    hw = hwmod.detect()
    chosen, why = hwmod.resolve_preset(preset, hw)
    click.echo(f"hardware: {hw.describe()}")
    click.echo(f"preset:   {chosen} ({why}) - {hwmod.PRESETS[chosen]}")
    click.echo(f"demo:     {module} {dm.name} - {dm.summary}")
    click.echo(f"output:   {out.resolve()}" + (f"\nbudget:   {seconds:g} s" if seconds else "") + "\n")
    ctx = RunContext(module=module, demo=dm.name, preset=chosen, out=out, budget=seconds, hardware=hw, seed=seed,
                     model=model)
    with reported_errors(f"The demo {module} {dm.name}", usage_errors=(DemoOptionError,),
                         interrupted="Interrupted. Run the same command again to resume where the demo supports it."):
        fn = resolve(dm.ref)
        result = fn(ctx)
    took = ctx.elapsed()
    click.echo(click.style(f"\nDone in {took:.1f} s.", fg="green", bold=True) + f" Outputs in {out.resolve()}")
    if isinstance(result, dict):
        for k, v in result.items():
            if isinstance(v, float):
                v = f"{v:.4g}"
            click.echo(f"  {k}: {v}")


@main.command(epilog=EPILOG)
@click.argument("module", required=False)
@click.argument("files", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Fetch the data of every installed module.")
def fetch(module: str | None, files: tuple[str, ...], all_: bool) -> None:
    """Pre-download and verify the data of MODULE (only FILES when named), or of every module (--all).

    \b
    Examples:
      workshop fetch astro
      workshop fetch protein esm2_t6_8M_UR50D.pt esm2_t6_8M_UR50D-contact-regression.pt
    """
    from .data import DataError, ModuleData

    if not module and not all_:
        raise UsageProblem("name a module (workshop fetch astro) or use --all")
    if all_ and (module or files):
        raise UsageProblem("--all fetches everything: give either --all or a module (and its files)")
    reg = registry()
    decls = list(reg.modules.values()) if all_ else [get_module(module)]
    failed = 0
    for d in decls:
        md = ModuleData.of(d)
        names = [e.name for e in d.datasets]
        unknown = [f for f in files if f not in names]
        if unknown:
            raise UsageProblem(unknown_message(f"data file of module {d.name!r} named", unknown[0], names,
                                               hint=f"'workshop info {d.name}' lists them"))
        for name in files or names:
            try:
                path = md.fetch(name)
                click.echo(f"ok       {d.name}/{name}  {path}")
            except DataError as exc:
                failed += 1
                click.echo(click.style(f"FAILED   {d.name}/{name}", fg="red") + f"  {exc}", err=True)
    for b in reg.broken if all_ else ():
        failed += 1  # its data is unknown, so --all could not fetch everything: said, not skipped silently
        click.echo(click.style(f"FAILED   {b.name} (broken plugin, its data is unknown)", fg="red")
                   + f"  {b.error} (see 'workshop doctor')", err=True)
    if failed:
        sys.exit(EXIT_PROBLEM)


@main.command(epilog=EPILOG)
@click.argument("files", nargs=-1)
@click.option("--forget", is_flag=True, help="Drop this machine's pins of FILES (module/file) so the next download is pinned anew.")
def pins(files: tuple[str, ...], forget: bool) -> None:
    """Print this machine's pins (sha256 and size of files published without a checksum).

    \b
    Some files (the published ESM2 weights, for instance) come with no checksum: their
    first download is pinned, and later uses are verified against the pin. An instructor
    shares known-good pins with a course or a mirror:
      workshop fetch protein && workshop pins > pins.json      (instructor, once)
      export WORKSHOP_PINS=/path/to/pins.json                  (participants)
    Participants' downloads are then verified against the instructor's copy.
    FILES (module/file) restrict the output; with --forget they are unpinned.
    """
    from . import _pins

    try:
        if forget:
            if not files:
                raise UsageProblem("name the pins to forget, e.g. workshop pins --forget protein/esm2_t6_8M_UR50D.pt")
            bad = [k for k in files if not all(k.partition("/")[::2]) or k.count("/") != 1]
            if bad:
                raise UsageProblem(f"{bad[0]!r} is not a pin name; write MODULE/FILE, e.g. "
                                   "workshop pins --forget protein/esm2_t6_8M_UR50D.pt ('workshop pins' lists them)")
            for k in files:
                module, _, name = k.partition("/")
                gone = _pins.forget(module, name)
                click.echo(f"{'forgot' if gone else 'no pin for'} {k}", err=True)
            return
        known = _pins.read(_pins.machine_pins_path())
        unknown = [k for k in files if k not in known]
        if unknown:
            raise UsageProblem(f"no pin on this machine for {', '.join(unknown)}; pinned: {', '.join(known) or 'none'}")
        click.echo(_pins.export(list(files) or None), nl=False)
    except _pins.PinsFileError as exc:
        click.echo(click.style("data problem: ", fg="red", bold=True) + str(exc), err=True)
        sys.exit(EXIT_PROBLEM)


def _host_reachable(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    host, port = u.hostname, u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, f"{host}:{port} reachable"
    except OSError as exc:
        return False, f"{host}:{port} unreachable ({exc.__class__.__name__})"


class _DoctorReport:
    """The lines ``workshop doctor`` prints, ``ok`` or ``FIX`` with advice, and how many need fixing."""

    def __init__(self) -> None:
        self.problems = 0

    def line(self, ok: bool, msg: str, advice: str = "") -> None:
        self.problems += not ok
        mark = click.style("ok  ", fg="green") if ok else click.style("FIX ", fg="red", bold=True)
        click.echo(f"{mark} {msg}" + (f"\n       -> {advice}" if advice and not ok else ""))

    def section(self, title: str) -> None:
        click.echo(click.style(title, bold=True))


def _doctor_packages(report: _DoctorReport) -> None:
    from importlib.metadata import PackageNotFoundError, version

    report.section("Python and packages")
    report.line(sys.version_info >= (3, 11), f"Python {platform.python_version()} ({sys.executable})",
                "use Python 3.11 or newer")
    for pkg in ("workshop-core", "jax", "jaxlib", "equinox", "diffrax", "optax"):
        try:
            report.line(True, f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            report.line(False, f"{pkg} not installed", f"pip install {pkg} (or install a module, which brings it)")
    for d in registry().modules.values():
        try:
            report.line(True, f"module {d.name}: {d.distribution or d.package} {version(d.distribution or d.package)}")
        except PackageNotFoundError:
            report.line(True, f"module {d.name}: {d.package} (not installed as a distribution)")


def _doctor_hardware(report: _DoctorReport) -> None:
    from . import hardware as hwmod

    report.section("\nHardware")
    try:
        hw = hwmod.detect()
        report.line(True, hw.describe())
        preset, why = hwmod.resolve_preset(None, hw)
        report.line(True, f"preset {preset} ({why}): {hwmod.PRESETS[preset]}")
        if hw.ram_gb is not None:
            report.line(hw.ram_gb >= 4, f"{hw.ram_gb:.1f} GiB RAM", "close other programs; the demos need about 4 GiB")
    except Exception as exc:
        report.line(False, f"JAX could not start: {type(exc).__name__}: {exc}", "reinstall JAX: pip install -U jax")


def _doctor_environment(report: _DoctorReport) -> None:
    report.section("\nEnvironment")
    bad_env = _environment.problems()
    for problem in bad_env:
        report.line(False, problem)
    if not bad_env:
        report.line(True, "WORKSHOP_* variables: " + (", ".join(v for v in _environment.VARIABLES
                                                              if _environment.raw(v)) or "none set"))


def _doctor_cache(report: _DoctorReport) -> bool:
    """Reports the data cache; ``False`` when it cannot be used (the data checks need it)."""
    from .data import cache_dir

    report.section("\nData")
    try:
        root = cache_dir()
        report.line(True, f"cache at {root}" + (" (WORKSHOP_CACHE)" if _environment.raw("WORKSHOP_CACHE") else ""))
        _environment.writable_cache()
        report.line(True, "cache is writable")
        if _environment.flag_or_off("WORKSHOP_OFFLINE"):
            report.line(True, "offline mode is on (WORKSHOP_OFFLINE=1): nothing will be downloaded")
    except _environment.ConfigError as exc:
        report.line(False, f"the data cache cannot be used: {exc}")
        return False
    return True


def _doctor_datasets(report: _DoctorReport, reg) -> dict[str, str]:
    """Reports every module's datasets and its own checks; returns the download URLs (URL -> module)."""
    from .data import DataError, ModuleData

    hosts: dict[str, str] = {}
    for d in reg.modules.values():
        md = ModuleData.of(d)
        for e in d.datasets:
            try:
                st = md.status(e.name) if e.embedded or (e.size or 0) < 200e6 or md.path(e.name).is_file() else "missing"
            except (DataError, _environment.ConfigError) as exc:
                report.line(False, f"{d.name}/{e.name}: cannot be checked: {exc}")
                continue
            ok = st in {"embedded", "cached"} or (st == "missing" and e.remote)
            adv = (f"workshop fetch {d.name}" if st == "missing" else
                   f"reinstall {d.distribution or d.package}" if e.embedded else f"workshop fetch {d.name} (it is fetched again)")
            report.line(ok, f"{d.name}/{e.name}: {st}", adv)
            if e.url:
                hosts.setdefault(e.url, d.name)
        for ok, msg in reg.doctor_reports(d.name):
            report.line(ok, f"{d.name}: {msg}")
    return hosts


def _doctor_hosts(report: _DoctorReport, urls) -> None:
    from urllib.parse import urlparse

    report.section("\nHosts")
    seen = set()
    for url in urls:
        h = urlparse(url).hostname
        if h in seen:
            continue
        seen.add(h)
        ok, msg = _host_reachable(url)
        report.line(ok, msg, "no internet to this host: fetch on another network with 'workshop fetch --all', "
                             "or ask the instructor for a mirror (WORKSHOP_MIRROR)")


@main.command(epilog=EPILOG)
@click.option("--no-network", is_flag=True, help="Skip the host reachability tests.")
def doctor(no_network: bool) -> None:
    """Is this machine ready? Versions, hardware, preset, cache, data, hosts; with advice."""
    report = _DoctorReport()
    _doctor_packages(report)
    _doctor_hardware(report)
    _doctor_environment(report)
    if not _doctor_cache(report):
        click.echo(click.style(f"\n{report.problems} thing(s) to fix (see above); the data checks need a usable cache.",
                               fg="yellow", bold=True))
        sys.exit(EXIT_PROBLEM)
    reg = registry()
    hosts = _doctor_datasets(report, reg)
    if hosts and not no_network and not _environment.flag_or_off("WORKSHOP_OFFLINE"):
        _doctor_hosts(report, hosts)
    for b in reg.broken:
        report.line(False, f"plugin {b.name} is broken: {b.error}", f"reinstall the package that provides it ({b.source})")
    click.echo()
    if report.problems:
        click.echo(click.style(f"{report.problems} thing(s) to fix (see -> above).", fg="yellow", bold=True))
        sys.exit(EXIT_PROBLEM)
    else:
        click.echo(click.style("All good.", fg="green", bold=True))


for _cmd in _cli_learning.COMMANDS:  # lessons, check, new, validate, course
    main.add_command(_cmd)


if __name__ == "__main__":  # pragma: no cover
    main()
