"""The data registry: every file a module uses, each with a sha256, fetched through Pooch.

* **Embedded** entries ship inside the module package and are verified by the same hash;
  a damaged one is reported (reinstall the module), never used.
* **Remote** entries download into the cache (``WORKSHOP_CACHE``, default Pooch's OS
  cache folder), with a progress bar, atomically (into a temporary file, moved into
  place only once complete and verified). A cached file whose hash does not match is
  removed and fetched again.
* **Offline** (``WORKSHOP_OFFLINE=1``): never opens a socket; a missing file raises
  :class:`DataMissing` naming the file and the command that fetches it.
* **Mirror** (``WORKSHOP_MIRROR=http://host/path``): remote files are fetched from
  ``$WORKSHOP_MIRROR/<module>/<name>`` instead (an instructor's local copy for bad Wi-Fi);
  hashes are checked the same way.
* **Pinned** entries (``pin=True``: files published without a checksum): the first
  download's sha256 and size are recorded and printed; later uses are verified against
  that pin, or against an instructor's pins file (``WORKSHOP_PINS``). A file that does
  not match its pin is refused with both hashes and the fix, and never replaces a cached
  copy (see :mod:`workshop._pins`).

Example::

    from workshop.data import fetch
    path = fetch("astro", "hdf_stamps_32.npz")
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from . import _environment
from ._declaration import DataEntry, ModuleDeclaration

__all__ = [
    "DataError",
    "DataMissing",
    "DataCorrupt",
    "DataUnreachable",
    "DataDamaged",
    "PinMismatch",
    "ModuleData",
    "fetch",
    "fetch_all",
    "status",
    "cache_dir",
    "offline",
    "sha256_of",
]

Processor = Callable[[str, str, object], str]


class DataError(RuntimeError):
    """Base class of data problems; the message always says what to do."""


class DataMissing(DataError):
    """A remote file is not cached and may not be downloaded (offline mode)."""


class DataUnreachable(DataError):
    """A download failed: no network, the host did not answer, or the transfer broke off."""


class DataCorrupt(DataError):
    """A download did not match its registry hash; the bad file was discarded."""


class DataDamaged(DataError):
    """A file shipped inside a package does not match its registry hash."""


class PinMismatch(DataError):
    """A pinned file (cached or downloaded) does not match its pin; it was not used."""


def offline() -> bool:
    """True when ``WORKSHOP_OFFLINE`` is on (1, true, yes, on); a value that is neither on
    nor off raises :class:`~workshop._environment.ConfigError`."""
    return _environment.offline()


def cache_dir() -> Path:
    """The cache root: ``$WORKSHOP_CACHE`` or Pooch's OS cache folder for ``workshop``.

    A ``WORKSHOP_CACHE`` naming a file raises :class:`~workshop._environment.ConfigError`.
    """
    return _environment.cache_dir()


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ModuleData:
    """The data registry of one module.

    Arguments:
        module: the module's registered name (the cache sub-folder).
        package: the import package embedded entries live in.
        entries: the module's :class:`DataEntry` objects.
    """

    module: str
    package: str
    entries: tuple[DataEntry, ...]

    @classmethod
    def of(cls, decl: ModuleDeclaration) -> "ModuleData":
        return cls(decl.name, decl.package, tuple(decl.datasets))

    def entry(self, name: str) -> DataEntry:
        for e in self.entries:
            if e.name == name:
                return e
        from ._plugins import unknown_message

        raise KeyError(unknown_message(f"dataset of module {self.module!r} named", name, [e.name for e in self.entries]))

    def path(self, name: str) -> Path:
        """Where the file is (embedded) or will be cached (remote); nothing is checked."""
        e = self.entry(name)
        if e.embedded is not None:
            return Path(str(resources.files(self.package).joinpath(e.embedded)))
        return cache_dir() / self.module / e.name

    def url(self, e: DataEntry) -> str:
        mirror = _environment.mirror()
        if mirror:
            return f"{mirror}/{self.module}/{e.name}"
        assert e.url is not None
        return e.url

    def status(self, name: str) -> str:
        """One of ``"embedded"``, ``"cached"``, ``"missing"``, ``"damaged"``. Hashes the file."""
        e = self.entry(name)
        path = self.path(name)
        if not path.is_file():
            return "damaged" if e.embedded is not None else "missing"
        expected = self.expected_sha256(e)
        if expected is not None and sha256_of(path) != expected:
            return "damaged"
        return "embedded" if e.embedded is not None else "cached"

    def pin_of(self, e: DataEntry):
        """The :class:`workshop._pins.Pin` of a ``pin=True`` entry, or ``None`` before first use."""
        from . import _pins

        try:
            return _pins.lookup(self.module, e.name)
        except _pins.PinsFileError as exc:
            raise DataError(str(exc)) from None

    def expected_sha256(self, e: DataEntry) -> str | None:
        """The sha256 a file must have: the registry's, or its pin (``None``: not pinned yet)."""
        if not e.pin:
            return e.sha256
        pin = self.pin_of(e)
        return pin.sha256 if pin else None

    def fetch(self, name: str, *, processor: Processor | None = None, progress: bool | None = None) -> Path:
        """Return the local path of a verified file, downloading it when needed.

        Arguments:
            name: the entry's file name.
            processor: a Pooch processor ``(fname, action, pooch) -> new fname`` run
                after verification (e.g. to downsample once and cache the result);
                ``action`` is ``"download"``, ``"update"`` or ``"fetch"``.
            progress: show a progress bar while downloading (default: on a terminal).

        Returns:
            The path of the file (or whatever ``processor`` returned).
        """
        e = self.entry(name)
        if e.embedded is not None:
            path = self.path(name)
            if not path.is_file():
                raise DataDamaged(
                    f"the embedded file {e.embedded!r} of module {self.module!r} is missing from the "
                    f"installed package {self.package!r}; reinstall it (pip install --force-reinstall "
                    f"{self.package.replace('_', '-')})"
                )
            got = sha256_of(path)
            if got != e.sha256:
                raise DataDamaged(
                    f"the embedded file {path} of module {self.module!r} is damaged: sha256 {got[:12]}… "
                    f"but the registry expects {e.sha256[:12]}…; it was not used. Reinstall the module "
                    f"(pip install --force-reinstall {self.package.replace('_', '-')}) or, in a checkout, "
                    "restore it with 'git checkout -- <file>'"
                )
            return self._process(processor, path, "fetch")

        self._refuse_non_file(e)
        if e.pin:
            return self._fetch_pinned(e, processor, progress)
        target = self.path(name)
        action = "fetch"
        if target.is_file():
            if sha256_of(target) == e.sha256:
                return self._process(processor, target, "fetch")
            # A damaged cached copy is never used: it goes, and a good one is fetched.
            target.unlink()
            action = "update"
        else:
            action = "download"
        if offline():
            raise DataMissing(
                f"{e.name!r} (module {self.module!r}) is not in the cache at {target}, and offline mode "
                f"is on (WORKSHOP_OFFLINE=1), so it was not downloaded. When online, run "
                f"'workshop fetch {self.module}', or copy the file to {target} "
                f"(sha256 {e.sha256})."
            )
        self._download(e, target, progress)
        return self._process(processor, target, action)

    def _refuse_non_file(self, e: DataEntry) -> None:
        """A folder (or other non-file) where the cached file belongs is never removed for the user."""
        target = self.path(e.name)
        if target.exists() and not target.is_file():
            raise DataError(
                f"{target} is a folder, not the cached file {e.name!r} of module {self.module!r}; nothing was "
                f"changed. Move it away (or delete it if it is not yours), then run 'workshop fetch {self.module}'."
            )

    def _cache_folder(self, target: Path) -> None:
        """Create the module's cache folder, or say why it cannot be."""
        _environment.writable_cache()
        try:
            _environment.writable_folder(target.parent, "the data cache", "")
        except _environment.ConfigError:
            raise DataError(
                f"cannot write the module's cache folder {target.parent}: "
                f"{'a file is in its place' if target.parent.exists() else 'it cannot be created'}; nothing was "
                f"downloaded. Move that file away, then run 'workshop fetch {self.module}'."
            ) from None

    def _fetch_pinned(self, e: DataEntry, processor: Processor | None, progress: bool | None) -> Path:
        target = self.path(e.name)
        pin = self.pin_of(e)
        if target.is_file():
            got = sha256_of(target)
            if pin is None:  # put in the cache by hand before any pin: pin what is there
                self._pin_now(e, target, got, "the file found in the cache")
            elif got != pin.sha256:
                raise PinMismatch(
                    f"the cached {e.name!r} (module {self.module!r}) at {target} does not match its pin: "
                    f"sha256 {got}, pinned {pin.sha256} ({pin.size:,} bytes, pinned {pin.pinned or 'earlier'} "
                    f"in {pin.origin}). It was not used. If the file is damaged, delete it and run "
                    f"'workshop fetch {self.module}' (the new download is checked against the pin); if you "
                    f"trust this file, run 'workshop pins --forget {self.module}/{e.name}' to pin it anew."
                )
            return self._process(processor, target, "fetch")
        if offline():
            raise DataMissing(
                f"{e.name!r} (module {self.module!r}) is not in the cache at {target}, and offline mode "
                f"is on (WORKSHOP_OFFLINE=1), so it was not downloaded. When online, run "
                f"'workshop fetch {self.module}', or copy the file to {target}"
                + (f" (it must match its pin, sha256 {pin.sha256})." if pin else ".")
            )
        self._cache_folder(target)
        partial = target.with_name(f"{target.name}.{os.getpid()}.part")
        try:
            self._download_to(e, partial, progress)
            got, size = sha256_of(partial), partial.stat().st_size
            if pin is not None and (got, size) != (pin.sha256, pin.size):
                raise PinMismatch(
                    f"the download of {e.name!r} from {self.url(e)} does not match its pin: sha256 {got} "
                    f"({size:,} bytes), pinned {pin.sha256} ({pin.size:,} bytes, pinned {pin.pinned or 'earlier'} "
                    f"in {pin.origin}). It was discarded; nothing cached was changed. The host or mirror may "
                    "serve another version or a damaged file: try again later or another mirror. If the "
                    f"publisher really replaced the file, run 'workshop pins --forget {self.module}/{e.name}' "
                    "and fetch again to pin the new one."
                )
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        if pin is None:
            self._pin_now(e, target, got, "first download")
        return self._process(processor, target, "download")

    def _pin_now(self, e: DataEntry, path: Path, sha: str, why: str) -> None:
        """Record and print the pin of a file seen for the first time."""
        import sys

        from . import _pins

        pin = _pins.record(self.module, e.name, sha, path.stat().st_size, self.url(e))
        print(
            f"pinned {self.module}/{e.name} ({why}): sha256 {pin.sha256}, {pin.size:,} bytes, in {pin.origin}. "
            "Later uses are verified against it ('workshop pins' prints the pins to share).",
            file=sys.stderr,
        )

    def _download_to(self, e: DataEntry, path: Path, progress: bool | None) -> None:
        """Download ``e`` into ``path`` with Pooch's HTTP downloader (no hash check here)."""
        import pooch

        if progress is None:
            progress = _interactive()
        url = self.url(e)
        _announce(self.module, e.name, url)
        try:
            _downloader(url, progress)(url, str(path), None)
        except Exception as exc:  # network errors: say what failed and how to recover
            raise DataUnreachable(
                f"could not download {e.name!r} (module {self.module!r}) from {url}: "
                f"{type(exc).__name__}: {exc}. Check your connection ('workshop doctor' tests the "
                f"hosts), or copy the file to {self.path(e.name)}."
            ) from exc

    def _download(self, e: DataEntry, target: Path, progress: bool | None) -> None:
        import pooch

        self._cache_folder(target)
        if progress is None:
            progress = _interactive()
        url = self.url(e)
        downloader = _downloader(url, progress)
        _announce(self.module, e.name, url)
        logger, level = pooch.get_logger(), pooch.get_logger().level
        logger.setLevel("WARNING")  # its 'Downloading' line is ours, written where stderr is now
        try:
            # Pooch writes to a temporary file beside the target, checks the hash and
            # only then moves it into place: an interrupt leaves no half file.
            pooch.retrieve(
                url,
                known_hash=f"sha256:{e.sha256}",
                fname=e.name,
                path=target.parent,
                downloader=downloader,
                progressbar=bool(progress),
            )
        except ValueError as exc:
            if "hash" in str(exc).lower():
                fix = ("The mirror (WORKSHOP_MIRROR) holds a different or damaged copy: ask for a fresh one, "
                       "or unset WORKSHOP_MIRROR to download from the source." if _environment.mirror() else
                       "The host may serve a different or truncated file: try again later, or use a mirror "
                       "(WORKSHOP_MIRROR).")
                raise DataCorrupt(
                    f"the download of {e.name!r} from {url} does not match its registry sha256 "
                    f"({e.sha256[:12]}…); the file was discarded. {fix}"
                ) from exc
            raise
        except Exception as exc:  # network errors: say what failed and how to recover
            raise DataUnreachable(
                f"could not download {e.name!r} (module {self.module!r}) from {url}: "
                f"{type(exc).__name__}: {exc}. Check your connection ('workshop doctor' tests the "
                f"hosts), or copy the file to {target} (sha256 {e.sha256})."
            ) from exc
        finally:
            logger.setLevel(level)

    def _process(self, processor: Processor | None, path: Path, action: str) -> Path:
        if processor is None:
            return path
        return Path(processor(str(path), action, None))


def _announce(module: str, name: str, url: str) -> None:
    """The one line a download starts with, on the current standard error."""
    print(f"Downloading {module}/{name} from {url}", file=sys.stderr, flush=True)


def _downloader(url: str, progress: bool | None):
    """Pooch's HTTP downloader, or a copy from a local mirror folder (``file://``)."""
    import pooch

    if url.startswith("file:"):
        return _copy_from_folder
    return pooch.HTTPDownloader(progressbar=bool(progress), timeout=60)


def _copy_from_folder(url: str, output_file, pooch_obj) -> None:
    """A Pooch downloader for ``WORKSHOP_MIRROR=/a/folder``: copy ``folder/MODULE/FILE``."""
    import shutil
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    source = Path(url2pathname(urlparse(url).path))
    if not source.is_file():
        raise FileNotFoundError(f"the mirror folder has no file {source}")
    if hasattr(output_file, "write"):
        with open(source, "rb") as f:
            shutil.copyfileobj(f, output_file)
    else:
        shutil.copyfile(source, output_file)


def _interactive() -> bool:
    import sys

    return sys.stderr.isatty()


def module_data(module: str) -> ModuleData:
    from ._plugins import registry

    return ModuleData.of(registry().get(module))


def fetch(module: str, name: str, *, processor: Processor | None = None, progress: bool | None = None) -> Path:
    """Fetch ``name`` from the data registry of installed module ``module``.

    See :meth:`ModuleData.fetch`.
    """
    return module_data(module).fetch(name, processor=processor, progress=progress)


def fetch_all(module: str, *, progress: bool | None = None) -> dict[str, Path]:
    """Fetch and verify every entry of a module (what ``workshop fetch`` does)."""
    md = module_data(module)
    return {e.name: md.fetch(e.name, progress=progress) for e in md.entries}


def status(module: str) -> dict[str, str]:
    """``{name: "embedded" | "cached" | "missing" | "damaged"}`` for a module's entries."""
    md = module_data(module)
    return {e.name: md.status(e.name) for e in md.entries}
