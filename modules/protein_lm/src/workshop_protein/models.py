"""ESM2 models in Equinox (esm2quinox): the embedded small model and pretrained ESM2.

``load_model(name)`` returns ``(model, info)``: an :class:`esm2quinox.ESM2` and a
:class:`ModelInfo` saying what it is and where it came from.

* ``"embedded"``: a small ESM2-architecture model pretrained for this workshop on one
  bacterial proteome; it ships inside the package (sha256 in the registry). It is far
  weaker than ESM2 and its ``info.note`` says so.
* ``"esm2_t6_8M_UR50D"``, ``"esm2_t12_35M_UR50D"``, ``"esm2_t30_150M_UR50D"``,
  ``"esm2_t33_650M_UR50D"``: the published ESM2 checkpoints. Each is an entry of the
  module's data registry at the official URL (``<name>.pt``, with its contact
  regression ``<name>-contact-regression.pt``), fetched by the core with a progress
  bar, cached, mirrored (``WORKSHOP_MIRROR``) and refused offline like every other file.
  Their authors publish no checksum, so the first download is **pinned** (its sha256
  and size recorded and printed) and every later use is verified against the pin, or
  against an instructor's pins file (``WORKSHOP_PINS``). The file is read torch-free by
  the restricted reader of :mod:`workshop_protein.torch_weights`, which never runs code
  from it; fair-esm and PyTorch are not needed.

:func:`select_model` picks the model a demo or lesson uses: the one asked for, else the
best ESM2 for the preset that can be reached, else the embedded model (saying so).

Example::

    model, info = load_model("esm2_t6_8M_UR50D")    # downloads and pins on first use
    print(info.describe())
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from workshop.data import DataError

from .tokens import ALPHABET

__all__ = [
    "ESM2_PRETRAINED",
    "EMBEDDED_MODEL_FILE",
    "ModelInfo",
    "ModelNotAvailable",
    "UnknownModel",
    "load_model",
    "new_model",
    "save_model",
    "read_model",
    "ModelFileError",
    "model_from_state_dict",
    "count_parameters",
    "select_model",
    "PRESET_MODELS",
    "weights_file",
    "contact_regression_file",
]

EMBEDDED_MODEL_FILE = "protein_embedded_model.npz"


@dataclass(frozen=True)
class Esm2Spec:
    """Architecture of a published ESM2 model and where its weights are published."""

    num_layers: int
    embed_size: int
    num_heads: int
    parameters: str

    def url(self, name: str) -> str:
        return f"https://dl.fbaipublicfiles.com/fair-esm/models/{name}.pt"


ESM2_PRETRAINED: dict[str, Esm2Spec] = {
    "esm2_t6_8M_UR50D": Esm2Spec(6, 320, 20, "8M"),
    "esm2_t12_35M_UR50D": Esm2Spec(12, 480, 20, "35M"),
    "esm2_t30_150M_UR50D": Esm2Spec(30, 640, 20, "150M"),
    "esm2_t33_650M_UR50D": Esm2Spec(33, 1280, 20, "650M"),
}


class ModelNotAvailable(RuntimeError):
    """The weights of a model are not on this machine (the message says how to get them)."""


class UnknownModel(ValueError):
    """A model name that is neither ``"embedded"`` nor a published ESM2."""


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is.

    Arguments:
        name: ``"embedded"`` or an ESM2 name.
        source: where the weights were read from (a path or ``"fair-esm"``).
        num_layers, embed_size, num_heads: the architecture.
        parameters: number of trainable numbers.
        note: what a learner should know (e.g. that the embedded model is small).
        metadata: anything else the weights file recorded (training data, perplexities).
    """

    name: str
    source: str
    num_layers: int
    embed_size: int
    num_heads: int
    parameters: int
    note: str = ""
    metadata: dict = field(default_factory=dict)

    @property
    def pretrained_esm2(self) -> bool:
        return self.name in ESM2_PRETRAINED

    def describe(self) -> str:
        arch = f"{self.num_layers} layers × {self.embed_size} dims × {self.num_heads} heads, {self.parameters / 1e6:.2f}M parameters"
        text = f"{self.name} ({arch}) from {self.source}"
        return f"{text}. {self.note}" if self.note else text

    def as_dict(self) -> dict:
        return asdict(self)


def new_model(num_layers: int, embed_size: int, num_heads: int, *, key, token_dropout: bool = False):
    """A randomly initialised ESM2-architecture model (esm2quinox)."""
    import esm2quinox

    return esm2quinox.ESM2(num_layers=num_layers, embed_size=embed_size, num_heads=num_heads, token_dropout=token_dropout, key=key)


def count_parameters(model) -> int:
    import equinox as eqx
    import jax

    return int(sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))))


def _skeleton(num_layers: int, embed_size: int, num_heads: int, token_dropout: bool):
    """The model's structure with ``jax.ShapeDtypeStruct`` in place of every weight array."""
    import equinox as eqx
    import jax

    skel = jax.eval_shape(lambda: new_model(num_layers, embed_size, num_heads, key=jax.random.key(0), token_dropout=token_dropout))
    # eval_shape also abstracts the (non-array) dropout settings; restore them.
    return eqx.tree_at(lambda m: m.layers.attn.dropout, skel, eqx.nn.Dropout(p=0.0))


def _is_abstract(x) -> bool:
    import jax

    return isinstance(x, jax.ShapeDtypeStruct)


# --- Our own weights format: a plain .npz (no pickle) -----------------------------------


def save_model(path: str | os.PathLike, model, *, metadata: dict | None = None) -> Path:
    """Write a model's arrays and architecture to an ``.npz`` file (readable without pickle).

    Arguments:
        path: the file to write.
        model: an :class:`esm2quinox.ESM2`.
        metadata: JSON-serialisable facts to keep beside the weights (data, perplexities).
    """
    import equinox as eqx
    import jax

    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
    config = {
        "format": "workshop-protein-esm2/1",
        "num_layers": model.num_layers,
        "embed_size": model.embed_size,
        "num_heads": model.num_heads,
        "token_dropout": bool(model.token_dropout),
        "alphabet": list(ALPHABET),
        "metadata": metadata or {},
    }
    arrays = {f"leaf_{i:04d}": np.asarray(x, dtype=np.float32) for i, x in enumerate(leaves)}
    arrays["config_json"] = np.frombuffer(json.dumps(config, sort_keys=True).encode(), dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


class ModelFileError(DataError, ValueError):
    """A model file that cannot be used: missing, truncated, of another kind or
    architecture, or with non-finite weights. The message names the file and the fix; a
    :class:`workshop.data.DataError`, so ``workshop run`` reports it without a traceback."""


def read_model(path: str | os.PathLike):
    """Read a model written by :func:`save_model`. Returns ``(model, config)``.

    Raises:
        ModelFileError: the file is missing, truncated or not a ``.npz``, was written by
            something else (another module, another format), its arrays do not fit the
            architecture it declares, or a weight is NaN or infinite.
    """
    import zipfile
    import zlib

    import equinox as eqx
    import jax
    import jax.numpy as jnp

    path = Path(path)
    fix = f"delete {path} and write it again with save_model (or load the shipped model: load_model('embedded'))"
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "config_json" not in z.files:
                raise ModelFileError(f"{path} is not a workshop-protein model file: it has no 'config_json' (its arrays "
                                     f"are {', '.join(z.files[:4]) or 'none'}{', ...' if len(z.files) > 4 else ''}); "
                                     "give a file written by save_model")
            try:
                config = json.loads(bytes(z["config_json"]).decode())
                if not isinstance(config, dict):
                    raise ValueError(f"a {type(config).__name__}")
            except ValueError as exc:
                raise ModelFileError(f"{path}: its config_json is not a JSON object ({exc}); {fix}") from None
            if config.get("format") != "workshop-protein-esm2/1":
                raise ModelFileError(f"{path} is not a workshop-protein model file (format {config.get('format')!r}, "
                                     "expected 'workshop-protein-esm2/1')")
            try:
                arch = [int(config[k]) for k in ("num_layers", "embed_size", "num_heads")]
                skel = _skeleton(*arch, bool(config.get("token_dropout", False)))
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelFileError(f"{path}: its config does not describe an ESM2 ({type(exc).__name__}: {exc}); "
                                     f"{fix}") from None
            params, static = eqx.partition(skel, _is_abstract)
            shapes, treedef = jax.tree_util.tree_flatten(params)
            names = sorted(k for k in z.files if k.startswith("leaf_"))
            if len(names) != len(shapes):
                raise ModelFileError(f"{path} holds {len(names)} weight arrays, the {arch[0]}-layer ESM2 it declares "
                                     f"needs {len(shapes)}: the file is damaged; {fix}")
            leaves = [z[f"leaf_{i:04d}"] for i in range(len(shapes))]
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, KeyError) as exc:
        raise ModelFileError(f"{path} cannot be read ({type(exc).__name__}: {exc}): truncated, or not an .npz; "
                             f"{fix}") from None
    except ValueError as exc:  # np.load on a file that is not an .npy/.npz at all
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path} is not an .npz model file ({exc}); {fix}") from None
    for i, (s, x) in enumerate(zip(shapes, leaves)):
        if tuple(s.shape) != x.shape:
            raise ModelFileError(f"{path}: array {i} has shape {x.shape}, the architecture needs {tuple(s.shape)}; "
                                 f"{fix}")
        if not np.isfinite(x).all():
            raise ModelFileError(f"{path}: array {i} holds {int((~np.isfinite(x)).sum())} NaN or infinite weights "
                                 f"(a diverged training run); {fix}")
    params = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(x) for x in leaves])
    return eqx.combine(params, static), config


# --- fair-esm state dicts (numpy) -> esm2quinox -------------------------------------------


def _strip_prefixes(state: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in state.items():
        for p in ("encoder.sentence_encoder.", "encoder."):
            if k.startswith(p):
                k = k[len(p):]
                break
        out[k] = v
    return out


def model_from_state_dict(state: dict[str, Any], *, num_heads: int, token_dropout: bool = True):
    """Build an esm2quinox ESM2 from a fair-esm ESM2 state dict of numpy arrays.

    The number of layers and the width are read from the arrays; the number of heads
    cannot be (it only splits the width), so it is given.

    Arguments:
        state: ``{name: array}`` as in ``esm.ESM2().state_dict()`` (the official
            checkpoints' ``"encoder."`` prefixes are accepted).
        num_heads: attention heads (20 for ESM2 8M–650M).
        token_dropout: ESM2's rescaling of embeddings by the fraction of masks (True for ESM2).
    """
    import equinox as eqx
    import jax.numpy as jnp

    s = {k: np.asarray(v, dtype=np.float32) for k, v in _strip_prefixes(state).items()}
    missing = [k for k in ("embed_tokens.weight", "emb_layer_norm_after.weight", "lm_head.dense.weight") if k not in s]
    if missing:
        raise ValueError(f"not an ESM2 state dict: missing {missing}; keys start {sorted(s)[:5]}")
    vocab, embed = s["embed_tokens.weight"].shape
    if vocab != len(ALPHABET):
        raise ValueError(f"the embedding has {vocab} tokens, the ESM2 alphabet {len(ALPHABET)}")
    n_layers = 1 + max(int(k.split(".")[1]) for k in s if k.startswith("layers."))
    if embed % num_heads:
        raise ValueError(f"width {embed} is not divisible by num_heads={num_heads}")
    model = _skeleton(n_layers, embed, num_heads, token_dropout)

    def stack(fmt: str) -> jnp.ndarray:
        return jnp.asarray(np.stack([s[fmt.format(i)] for i in range(n_layers)]))

    L = "layers.{}."
    pairs = {
        lambda m: m.layers.attn.query_proj.weight: stack(L + "self_attn.q_proj.weight"),
        lambda m: m.layers.attn.query_proj.bias: stack(L + "self_attn.q_proj.bias"),
        lambda m: m.layers.attn.key_proj.weight: stack(L + "self_attn.k_proj.weight"),
        lambda m: m.layers.attn.key_proj.bias: stack(L + "self_attn.k_proj.bias"),
        lambda m: m.layers.attn.value_proj.weight: stack(L + "self_attn.v_proj.weight"),
        lambda m: m.layers.attn.value_proj.bias: stack(L + "self_attn.v_proj.bias"),
        lambda m: m.layers.attn.output_proj.weight: stack(L + "self_attn.out_proj.weight"),
        lambda m: m.layers.attn.output_proj.bias: stack(L + "self_attn.out_proj.bias"),
        lambda m: m.layers.layer_norm1.weight: stack(L + "self_attn_layer_norm.weight"),
        lambda m: m.layers.layer_norm1.bias: stack(L + "self_attn_layer_norm.bias"),
        lambda m: m.layers.layer_norm2.weight: stack(L + "final_layer_norm.weight"),
        lambda m: m.layers.layer_norm2.bias: stack(L + "final_layer_norm.bias"),
        lambda m: m.layers.linear1.weight: stack(L + "fc1.weight"),
        lambda m: m.layers.linear1.bias: stack(L + "fc1.bias"),
        lambda m: m.layers.linear2.weight: stack(L + "fc2.weight"),
        lambda m: m.layers.linear2.bias: stack(L + "fc2.bias"),
        lambda m: m.layer_norm.weight: jnp.asarray(s["emb_layer_norm_after.weight"]),
        lambda m: m.layer_norm.bias: jnp.asarray(s["emb_layer_norm_after.bias"]),
        lambda m: m.logit_head.linear1.weight: jnp.asarray(s["lm_head.dense.weight"]),
        lambda m: m.logit_head.linear1.bias: jnp.asarray(s["lm_head.dense.bias"]),
        lambda m: m.logit_head.layer_norm.weight: jnp.asarray(s["lm_head.layer_norm.weight"]),
        lambda m: m.logit_head.layer_norm.bias: jnp.asarray(s["lm_head.layer_norm.bias"]),
        # ESM2 ties the output projection to the token embedding; esm2quinox reads the
        # embedding from linear2.weight, so one array serves both.
        lambda m: m.logit_head.linear2.weight: jnp.asarray(s.get("lm_head.weight", s["embed_tokens.weight"])),
        lambda m: m.logit_head.linear2.bias: jnp.asarray(s["lm_head.bias"]),
    }
    for where, value in pairs.items():
        old = where(model)
        if tuple(old.shape) != tuple(value.shape):
            raise ValueError(f"shape mismatch: expected {tuple(old.shape)}, got {tuple(value.shape)}")
        model = eqx.tree_at(where, model, value)
    import jax

    left = [x for x in jax.tree_util.tree_leaves(model) if isinstance(x, jax.ShapeDtypeStruct)]
    if left:
        raise ValueError(f"{len(left)} arrays of the model were not filled from the state dict")
    return model


# --- Published ESM2 checkpoints, fetched through the data registry ----------------------


def weights_file(name: str) -> str:
    """The registry entry (file name) of an ESM2 checkpoint."""
    return f"{name}.pt"


def contact_regression_file(name: str) -> str:
    """The registry entry (file name) of an ESM2 checkpoint's contact regression."""
    return f"{name}-contact-regression.pt"


def _torch_hub_file(name: str) -> Path:
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints" / name


def fetch_esm2_file(file: str) -> Path:
    """Fetch (or find in the cache) one published ESM2 file, verified against its pin.

    A copy that fair-esm already downloaded into PyTorch's hub cache is adopted (copied
    into the workshop cache and pinned there) instead of downloading it again.
    """
    import shutil

    from workshop.data import module_data

    md = module_data("protein")
    target = md.path(file)
    hub = _torch_hub_file(file)
    if not target.is_file() and hub.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".adopt")
        shutil.copyfile(hub, tmp)
        tmp.replace(target)
    return md.fetch(file)


def _read_official(path: Path, name: str):
    from .torch_weights import UnsafeCheckpoint, read_checkpoint

    spec = ESM2_PRETRAINED[name]
    fix = (f"delete {path}, forget its pin (workshop pins --forget protein/{path.name}) and fetch it again "
           f"(workshop fetch protein {path.name})")
    try:
        ckpt = read_checkpoint(path)
    except UnsafeCheckpoint as exc:
        raise ModelFileError(f"{path} cannot be used as {name}: {exc}; {fix}") from None
    except Exception as exc:  # a truncated zip, a damaged pickle stream
        raise ModelFileError(f"{path} cannot be read as {name} ({type(exc).__name__}: {exc}): truncated or not a "
                             f"PyTorch checkpoint; {fix}") from None
    state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
    if not isinstance(state, dict):
        raise ModelFileError(f"{path} holds a {type(state).__name__}, not an ESM2 state dict; {fix}")
    try:
        model = model_from_state_dict(state, num_heads=spec.num_heads, token_dropout=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path} is not a checkpoint of {name}: {exc}; {fix}") from None
    if (model.num_layers, model.embed_size) != (spec.num_layers, spec.embed_size):
        raise ModelFileError(
            f"{path} holds a {model.num_layers}-layer, {model.embed_size}-wide model, not {name} "
            f"({spec.num_layers} layers, {spec.embed_size} wide); {fix}"
        )
    import equinox as eqx
    import jax

    bad = sum(int((~np.isfinite(np.asarray(x))).sum()) for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))
    if bad:
        raise ModelFileError(f"{path} holds {bad} NaN or infinite weights; {fix}")
    return model


def load_model(name: str = "embedded"):
    """Load a model by name.

    Arguments:
        name: ``"embedded"`` or one of :data:`ESM2_PRETRAINED`.

    Returns:
        ``(model, info)``: an :class:`esm2quinox.ESM2` and its :class:`ModelInfo`.

    Raises:
        UnknownModel: an unknown name.
        ValueError: a file that is not that model's checkpoint (another architecture, not a
            zip checkpoint: ``torch_weights.UnsafeCheckpoint``).
        workshop.data.DataError: the weights could not be fetched (offline, no network), or
            they do not match their pin (``PinMismatch``: never used).
    """
    if name == "embedded":
        from workshop.data import fetch

        path = fetch("protein", EMBEDDED_MODEL_FILE)
        model, config = read_model(path)
        meta = config.get("metadata", {})
        note = (
            "A small model pretrained for this workshop on one bacterial proteome "
            f"(validation perplexity {meta.get('val_perplexity', float('nan')):.2f} vs "
            f"{meta.get('unigram_perplexity', float('nan')):.2f} for amino-acid frequencies alone); "
            "its mutation scores and contacts are far weaker than pretrained ESM2's."
        )
        info = ModelInfo("embedded", f"embedded file {path.name}", model.num_layers, model.embed_size, model.num_heads,
                         count_parameters(model), note, meta)
        return model, info
    if name not in ESM2_PRETRAINED:
        raise UnknownModel(f"unknown model {name!r}; choose 'embedded' or one of {', '.join(ESM2_PRETRAINED)}")
    path = fetch_esm2_file(weights_file(name))
    model = _read_official(path, name)
    info = ModelInfo(name, f"{path} (pinned sha256, read without running code from the file)", model.num_layers, model.embed_size, model.num_heads, count_parameters(model),
                     "published ESM2 weights (Lin et al. 2023), trained on UniRef50")
    return model, info


#: The model each preset uses by default (the embedded one when it cannot be reached).
PRESET_MODELS = {
    "tiny": "embedded",
    "cpu": "esm2_t6_8M_UR50D",
    "gpu": "esm2_t12_35M_UR50D",
    "full": "esm2_t33_650M_UR50D",
}


def select_model(requested: str | None = None, preset: str = "cpu", *, log=print):
    """The model a demo, lesson or command uses, with one line saying which and why.

    * ``requested`` (``--model NAME``): that model, or an error; never another one.
    * otherwise the preset's model (:data:`PRESET_MODELS`: ESM2-8M at ``cpu``, 35M at
      ``gpu``, 650M at ``full``), fetched and pinned on first use;
    * when that cannot be reached (offline with nothing cached, or no network), the
      embedded model, with a line saying so, what it means for the numbers and how to
      get ESM2. A file that was refused (pin mismatch) or damaged is an error, never a
      reason to switch models.

    Arguments:
        requested: a model name, or ``None`` to choose by preset.
        preset: ``"tiny"``, ``"cpu"``, ``"gpu"`` or ``"full"``.
        log: where the line goes (``print``, ``ctx.log``).

    Returns:
        ``(model, info)`` as :func:`load_model`.
    """
    from workshop.data import DataMissing, DataUnreachable

    if requested:
        model, info = load_model(requested)
        log(f"Model: {info.describe()} (asked for)")
        return model, info
    wanted = PRESET_MODELS.get(preset, PRESET_MODELS["cpu"])
    if wanted != "embedded":
        try:
            model, info = load_model(wanted)
            log(f"Model: {info.describe()} (the {preset} preset's model)")
            return model, info
        except DataMissing:
            why = "offline (WORKSHOP_OFFLINE=1) and not cached"
        except DataUnreachable as exc:  # a refused or damaged file (PinMismatch, ...) is raised, not replaced
            why = f"not cached and its host could not be reached ({exc.__cause__.__class__.__name__})"
        model, info = load_model("embedded")
        log(f"Model: the small embedded model ({info.parameters / 1e6:.1f}M parameters), because {wanted} is {why}. "
            "Its scores are far weaker than ESM2's: mutation effects close to an amino-acid composition prior, "
            f"contacts barely above chance. To use ESM2: 'workshop fetch protein {weights_file(wanted)} "
            f"{contact_regression_file(wanted)}' when online.")
        return model, info
    model, info = load_model("embedded")
    log(f"Model: {info.describe()} (the {preset} preset's model; pass --model esm2_t6_8M_UR50D for ESM2)")
    return model, info
