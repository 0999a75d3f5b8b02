"""ESM2 models in Equinox (esm2quinox): the embedded small model and pretrained ESM2.

``load_model(name)`` returns ``(model, info)``: an :class:`esm2quinox.ESM2` and a
:class:`ModelInfo` saying what it is and where it came from.

* ``"embedded"`` (the default): a small ESM2-architecture model pretrained for this
  workshop on one bacterial proteome; it ships inside the package (sha256 in the
  registry). It is far weaker than ESM2 and its ``info.note`` says so.
* ``"esm2_t6_8M_UR50D"``, ``"esm2_t12_35M_UR50D"``, ``"esm2_t30_150M_UR50D"``,
  ``"esm2_t33_650M_UR50D"``: the published ESM2 weights, read from

  1. a weights file you registered with :func:`register_local_weights` (checked
     against the sha256 recorded then),
  2. PyTorch's hub cache (``$TORCH_HOME/hub/checkpoints/<name>.pt``, where fair-esm
     puts them): through fair-esm and ``esm2quinox.from_torch`` when torch and
     fair-esm are installed, otherwise torch-free with the restricted reader of
     :mod:`workshop_protein.torch_weights` (which never runs code from the file).

No sha256 of the official ``.pt`` files is published, so they are not entries of the
data registry (whose entries must carry one): see ``datasets/protein_embedded_model.md``.

Example::

    model, info = load_model()          # the embedded model
    print(info.describe())
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .tokens import ALPHABET

__all__ = [
    "ESM2_PRETRAINED",
    "EMBEDDED_MODEL_FILE",
    "ModelInfo",
    "ModelNotAvailable",
    "load_model",
    "new_model",
    "save_model",
    "read_model",
    "model_from_state_dict",
    "register_local_weights",
    "registered_local_weights",
    "count_parameters",
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


def read_model(path: str | os.PathLike):
    """Read a model written by :func:`save_model`. Returns ``(model, config)``."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    with np.load(path, allow_pickle=False) as z:
        config = json.loads(bytes(z["config_json"]).decode())
        if config.get("format") != "workshop-protein-esm2/1":
            raise ValueError(f"{path} is not a workshop-protein model file (format {config.get('format')!r})")
        skel = _skeleton(config["num_layers"], config["embed_size"], config["num_heads"], config["token_dropout"])
        params, static = eqx.partition(skel, _is_abstract)
        shapes, treedef = jax.tree_util.tree_flatten(params)
        leaves = [z[f"leaf_{i:04d}"] for i in range(len(shapes))]
    for i, (s, x) in enumerate(zip(shapes, leaves)):
        if tuple(s.shape) != x.shape:
            raise ValueError(f"{path}: array {i} has shape {x.shape}, the architecture needs {tuple(s.shape)}")
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


# --- Local weights registry (the user's own checksums) ----------------------------------


def _local_registry_path() -> Path:
    from workshop.data import cache_dir

    return cache_dir() / "protein" / "local_weights.json"


def registered_local_weights() -> dict[str, dict]:
    """``{name: {"path", "sha256", "size"}}`` recorded by :func:`register_local_weights`."""
    p = _local_registry_path()
    return json.loads(p.read_text()) if p.is_file() else {}


def register_local_weights(path: str | os.PathLike, name: str | None = None) -> dict:
    """Record an official ESM2 ``.pt`` file you downloaded, with its sha256.

    The file is read once with the restricted reader (never unpickling code) to prove
    it is an ESM2 checkpoint of the expected shape; its sha256 is computed and kept in
    ``$WORKSHOP_CACHE/protein/local_weights.json``. Later ``load_model(name)`` reads it
    only while its sha256 is unchanged.

    Arguments:
        path: the ``.pt`` file, e.g. ``esm2_t6_8M_UR50D.pt``.
        name: the ESM2 name; default: the file's stem.

    Returns:
        The recorded entry (``path``, ``sha256``, ``size``).
    """
    from workshop.data import sha256_of

    path = Path(path).expanduser().resolve()
    name = name or path.stem
    if name not in ESM2_PRETRAINED:
        raise ValueError(f"unknown ESM2 model {name!r}; known: {', '.join(ESM2_PRETRAINED)} (pass name=...)")
    _read_official(path, name)  # proves it is readable and of the right architecture
    entry = {"path": str(path), "sha256": sha256_of(path), "size": path.stat().st_size}
    reg = registered_local_weights()
    reg[name] = entry
    p = _local_registry_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(reg, indent=2) + "\n")
    return entry


def _read_official(path: Path, name: str):
    from .torch_weights import read_checkpoint

    spec = ESM2_PRETRAINED[name]
    ckpt = read_checkpoint(path)
    state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
    model = model_from_state_dict(state, num_heads=spec.num_heads, token_dropout=True)
    if (model.num_layers, model.embed_size) != (spec.num_layers, spec.embed_size):
        raise ValueError(
            f"{path} holds a {model.num_layers}-layer, {model.embed_size}-wide model, not {name} "
            f"({spec.num_layers} layers, {spec.embed_size} wide)"
        )
    return model


def _torch_hub_file(name: str) -> Path:
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints" / f"{name}.pt"


def _load_pretrained(name: str, source: str):
    spec = ESM2_PRETRAINED[name]
    local = registered_local_weights().get(name)
    if local and source in ("auto", "weights"):
        from workshop.data import sha256_of

        p = Path(local["path"])
        if not p.is_file():
            raise ModelNotAvailable(f"the weights registered for {name} at {p} are gone; register them again")
        got = sha256_of(p)
        if got != local["sha256"]:
            raise ModelNotAvailable(
                f"{p} changed since it was registered (sha256 {got[:12]}…, recorded {local['sha256'][:12]}…); "
                "it was not used. Download it again and call register_local_weights(path)"
            )
        return _read_official(p, name), f"{p} (registered, sha256 {got[:12]}…)"
    hub = _torch_hub_file(name)
    if hub.is_file():
        fair_esm_error = None
        if source in ("auto", "fair-esm"):
            try:
                import esm
                import esm2quinox

                torch_model, _ = esm.pretrained.load_model_and_alphabet_local(str(hub))
                return esm2quinox.from_torch(torch_model.eval()), f"fair-esm ({hub})"
            except Exception as exc:  # missing torch/fair-esm, or a torch.load that refuses the file
                text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split("\n")[0]  # drop terminal colours
                fair_esm_error = f"{type(exc).__name__}: {text[:160]}"
                if source == "fair-esm":
                    raise ModelNotAvailable(
                        f"fair-esm could not load {hub} ({fair_esm_error}); try source='weights' (torch-free)"
                    ) from exc
        model = _read_official(hub, name)
        note = f"; fair-esm route failed: {fair_esm_error}" if fair_esm_error else ""
        return model, f"{hub} (restricted reader{note})"
    raise ModelNotAvailable(
        f"the weights of {name} ({spec.parameters} parameters) are not on this machine. Either\n"
        f"  * with PyTorch: pip install torch fair-esm, then\n"
        f"    python -c \"import esm; esm.pretrained.{name}()\"  (caches them in {hub.parent}), or\n"
        f"  * without PyTorch: download {spec.url(name)} and run\n"
        f"    python -c \"from workshop_protein.models import register_local_weights; register_local_weights('{name}.pt')\"\n"
        "No sha256 of these files is published, so the workshop cannot verify them for you: "
        "register_local_weights records the checksum of your copy. Until then, use load_model('embedded')."
    )


def load_model(name: str = "embedded", *, source: str = "auto"):
    """Load a model by name.

    Arguments:
        name: ``"embedded"`` or one of :data:`ESM2_PRETRAINED`.
        source: for ESM2: ``"auto"``, ``"fair-esm"`` (via torch) or ``"weights"`` (torch-free).

    Returns:
        ``(model, info)``: an :class:`esm2quinox.ESM2` and its :class:`ModelInfo`.

    Raises:
        ModelNotAvailable: the weights are not on this machine (the message says how to get them).
    """
    if source not in ("auto", "fair-esm", "weights"):
        raise ValueError(f"source must be 'auto', 'fair-esm' or 'weights', got {source!r}")
    if name == "embedded":
        from workshop.data import fetch

        path = fetch("protein", EMBEDDED_MODEL_FILE)
        model, config = read_model(path)
        meta = config.get("metadata", {})
        note = (
            "A small model pretrained for this workshop on one bacterial proteome "
            f"(validation perplexity {meta.get('val_perplexity', float('nan')):.2f} vs "
            f"{meta.get('unigram_perplexity', float('nan')):.2f} for amino-acid frequencies alone); "
            "pretrained ESM2 predicts far better: load_model('esm2_t6_8M_UR50D') once its weights are cached."
        )
        info = ModelInfo("embedded", f"embedded file {path.name}", model.num_layers, model.embed_size, model.num_heads,
                         count_parameters(model), note, meta)
        return model, info
    if name not in ESM2_PRETRAINED:
        raise ValueError(f"unknown model {name!r}; choose 'embedded' or one of {', '.join(ESM2_PRETRAINED)}")
    model, where = _load_pretrained(name, source)
    info = ModelInfo(name, where, model.num_layers, model.embed_size, model.num_heads, count_parameters(model),
                     "published ESM2 weights (Lin et al. 2023), trained on UniRef50")
    return model, info


def best_available_model(preferred: tuple[str, ...] = ("esm2_t6_8M_UR50D",)):
    """The first of ``preferred`` whose weights are here, else the embedded model."""
    for name in preferred:
        try:
            return load_model(name)
        except ModelNotAvailable:
            continue
    return load_model("embedded")
