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

Example::

    from workshop.data import fetch
    path = fetch("astro", "hdf_stamps_32.npz")
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from ._declaration import DataEntry, ModuleDeclaration

__all__ = [
    "DataError",
    "DataMissing",
    "DataCorrupt",
    "DataDamaged",
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


class DataCorrupt(DataError):
    """A download did not match its registry hash; the bad file was discarded."""


class DataDamaged(DataError):
    """A file shipped inside a package does not match its registry hash."""


def offline() -> bool:
    """True when ``WORKSHOP_OFFLINE`` is set to a true value (1, true, yes)."""
    return os.environ.get("WORKSHOP_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """The cache root: ``$WORKSHOP_CACHE`` or Pooch's OS cache folder for ``workshop``."""
    env = os.environ.get("WORKSHOP_CACHE")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("workshop"))


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
        mirror = os.environ.get("WORKSHOP_MIRROR", "").strip()
        if mirror:
            return f"{mirror.rstrip('/')}/{self.module}/{e.name}"
        assert e.url is not None
        return e.url

    def status(self, name: str) -> str:
        """One of ``"embedded"``, ``"cached"``, ``"missing"``, ``"damaged"``. Hashes the file."""
        e = self.entry(name)
        path = self.path(name)
        if not path.is_file():
            return "damaged" if e.embedded is not None else "missing"
        if sha256_of(path) != e.sha256:
            return "damaged"
        return "embedded" if e.embedded is not None else "cached"

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

    def _download(self, e: DataEntry, target: Path, progress: bool | None) -> None:
        import pooch

        target.parent.mkdir(parents=True, exist_ok=True)
        if progress is None:
            progress = _interactive()
        url = self.url(e)
        downloader = pooch.HTTPDownloader(progressbar=bool(progress), timeout=60)
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
                raise DataCorrupt(
                    f"the download of {e.name!r} from {url} does not match its registry sha256 "
                    f"({e.sha256[:12]}…); the file was discarded. The host may serve a different "
                    "or truncated file: try again later, or use a mirror (WORKSHOP_MIRROR)."
                ) from exc
            raise
        except Exception as exc:  # network errors: say what failed and how to recover
            raise DataError(
                f"could not download {e.name!r} (module {self.module!r}) from {url}: "
                f"{type(exc).__name__}: {exc}. Check your connection ('workshop doctor' tests the "
                f"hosts), or copy the file to {target} (sha256 {e.sha256})."
            ) from exc

    def _process(self, processor: Processor | None, path: Path, action: str) -> Path:
        if processor is None:
            return path
        return Path(processor(str(path), action, None))


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
