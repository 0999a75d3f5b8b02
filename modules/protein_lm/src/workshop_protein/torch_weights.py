"""Read PyTorch ``.pt`` checkpoints into numpy without PyTorch and without running their code.

A ``.pt`` file (``torch.save``, zip format) is a zip archive holding ``data.pkl`` (a
pickle describing the objects) and one raw little-endian byte file per tensor storage
(``data/0``, ``data/1``, ...). Unpickling a pickle may call any importable function, so
loading an untrusted one with ``pickle``/``torch.load`` can run arbitrary code. This
reader uses a restricted unpickler that resolves only a short allow-list of names:

* tensors (``torch._utils._rebuild_tensor_v2`` and ``_rebuild_parameter``, the storage
  types) become numpy arrays, built from the archive's raw bytes;
* ``collections.OrderedDict`` becomes an ordered ``dict``;
* configuration records that official checkpoints carry beside the weights
  (``argparse.Namespace`` and omegaconf's containers) become inert
  :class:`ConfigRecord` objects: their classes are never imported or called.

Any other name (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ...) raises
:class:`UnsafeCheckpoint` before anything is called.

Example::

    ckpt = read_checkpoint("esm2_t6_8M_UR50D.pt")
    state = ckpt["model"]          # {name: numpy array}
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from typing import Any

import numpy as np

__all__ = ["UnsafeCheckpoint", "ConfigRecord", "read_checkpoint"]


class UnsafeCheckpoint(ValueError):
    """The file asks to build an object outside the allow-list (or is not a zip checkpoint)."""


def _bfloat16():
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

_TORCH_DTYPES = {"float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
                 "float16": np.float16, "half": np.float16, "bfloat16": "bfloat16", "int64": np.int64,
                 "long": np.int64, "int32": np.int32, "int": np.int32, "int16": np.int16, "int8": np.int8,
                 "uint8": np.uint8, "bool": np.bool_}


def _np_dtype(d) -> np.dtype:
    return _bfloat16() if d == "bfloat16" else np.dtype(d)


class _StorageType:
    """Stands for ``torch.FloatStorage`` etc. inside the pickle: only its dtype matters."""

    def __init__(self, name: str, dtype):
        self.name, self.dtype = name, _np_dtype(dtype)


class _TorchDtype:
    def __init__(self, name: str):
        self.name, self.dtype = name, _np_dtype(_TORCH_DTYPES[name])


class ConfigRecord:
    """An inert stand-in for a configuration object (its class is never imported).

    Attributes:
        qualname: the class the file named, e.g. ``"argparse.Namespace"``.
        args: the constructor arguments the file gave.
        state: the object's recorded state (for a Namespace: its attributes).
    """

    qualname = ""
    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any):
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __getattr__(self, name: str) -> Any:
        state = self.__dict__.get("state")
        if isinstance(state, dict):
            if name in state:
                return state[name]
            content = state.get("_content")
            if isinstance(content, dict) and name in content:
                return content[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"ConfigRecord({self.qualname})"


_RECORD_TYPES: dict[str, type] = {}


def _record_type(qualname: str) -> type:
    # A subclass per configuration class named by the file (pickle's NEWOBJ needs a type).
    if qualname not in _RECORD_TYPES:
        _RECORD_TYPES[qualname] = type(qualname.rsplit(".", 1)[-1], (ConfigRecord,), {"qualname": qualname})
    return _RECORD_TYPES[qualname]


def _reconstructor(cls, base, state=None):
    if isinstance(cls, type) and issubclass(cls, ConfigRecord):
        return cls()
    raise UnsafeCheckpoint("copyreg._reconstructor asked for a class outside the allow-list")


# Configuration classes found beside the weights in published checkpoints; they are
# replaced by inert records, never imported.
_CONFIG_CLASSES = {
    ("argparse", "Namespace"),
    ("omegaconf.dictconfig", "DictConfig"),
    ("omegaconf.listconfig", "ListConfig"),
    ("omegaconf.base", "ContainerMetadata"),
    ("omegaconf.base", "Metadata"),
    ("omegaconf.nodes", "AnyNode"),
    ("omegaconf.nodes", "StringNode"),
    ("omegaconf.nodes", "IntegerNode"),
    ("omegaconf.nodes", "FloatNode"),
    ("omegaconf.nodes", "BooleanNode"),
}
# Plain Python types that only hold data.
_BUILTINS = {("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "dict"): dict,
             ("builtins", "list"): list, ("builtins", "tuple"): tuple, ("builtins", "slice"): slice,
             ("typing", "Any"): object, ("builtins", "object"): object}


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, np.ndarray):
        raise UnsafeCheckpoint("a tensor's storage is not raw data")
    size, stride, offset = tuple(int(s) for s in size), tuple(int(s) for s in stride), int(offset)
    if len(size) != len(stride) or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise UnsafeCheckpoint(f"a tensor has an invalid size {size} or stride {stride}")
    if not size:
        return storage[offset].copy()
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else offset
    if offset < 0 or end > storage.size:
        raise UnsafeCheckpoint(f"a tensor reaches outside its storage ({end} > {storage.size} elements)")
    base = storage[offset:]
    item = storage.itemsize
    return np.lib.stride_tricks.as_strided(base, shape=size, strides=[s * item for s in stride]).copy()


def _rebuild_parameter(data, requires_grad=False, hooks=None, *state):
    return data


class _StateDict(dict):
    """An ordered dict that can also hold the attributes torch attaches (``_metadata``)."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f, archive: zipfile.ZipFile, prefix: str, byteorder: str):
        super().__init__(f)
        self.archive, self.prefix, self.byteorder = archive, prefix, byteorder
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if key in (("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state")):
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:
            return _TorchDtype(name)
        if key == ("collections", "OrderedDict"):
            return _StateDict
        if key in _CONFIG_CLASSES:
            return _record_type(f"{module}.{name}")
        if key == ("copyreg", "_reconstructor"):
            return _reconstructor
        if key in _BUILTINS:
            return _BUILTINS[key]
        raise UnsafeCheckpoint(
            f"the checkpoint asks for {module}.{name}, which is not a tensor, a dict or a known "
            "configuration record; it was refused (nothing from the file was run). Only load "
            "checkpoints from a source you trust, with the tool that wrote them."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafeCheckpoint(f"unexpected persistent id {pid!r:.80}")
        _, stype, key, _location, numel = pid[:5]
        if isinstance(stype, _TorchDtype):  # newer files name a dtype with an untyped storage
            dtype = stype.dtype
        elif isinstance(stype, _StorageType):
            dtype = stype.dtype
        else:
            raise UnsafeCheckpoint(f"unknown storage type {stype!r:.80}")
        key = str(key)
        if key not in self.storages:
            raw = self.archive.read(f"{self.prefix}/data/{key}")
            arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<" if self.byteorder == "little" else ">"))
            self.storages[key] = arr.astype(dtype)  # native byte order, writable copy
        return self.storages[key]


def read_checkpoint(path: str | os.PathLike) -> Any:
    """Read a zip-format ``torch.save`` file into dicts, lists and numpy arrays.

    Arguments:
        path: the ``.pt`` file.

    Returns:
        The saved object with every tensor as a numpy array (``bfloat16`` through
        ``ml_dtypes``) and configuration objects as :class:`ConfigRecord`.

    Raises:
        UnsafeCheckpoint: the pickle names anything outside the allow-list, or the file
            is not a zip checkpoint (old ``torch.save`` files are refused: re-save them
            with a recent PyTorch, or use fair-esm's loader).
    """
    path = os.fspath(path)
    if not zipfile.is_zipfile(path):
        raise UnsafeCheckpoint(
            f"{path} is not a zip-format PyTorch checkpoint; this reader reads only those "
            "(torch.save since PyTorch 1.6). Load it with fair-esm and esm2quinox.from_torch instead"
        )
    with zipfile.ZipFile(path) as archive:
        pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkls) != 1:
            raise UnsafeCheckpoint(f"{path}: expected one data.pkl in the archive, found {len(pkls)}")
        prefix = pkls[0][: -len("/data.pkl")] if "/" in pkls[0] else ""
        names = set(archive.namelist())
        bo_name = f"{prefix}/byteorder" if prefix else "byteorder"
        byteorder = archive.read(bo_name).decode().strip() if bo_name in names else "little"
        data = archive.read(pkls[0])
        return _RestrictedUnpickler(io.BytesIO(data), archive, prefix, byteorder).load()
