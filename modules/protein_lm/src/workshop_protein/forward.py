"""A fast batched forward pass of an esm2quinox ESM2, for inference on a CPU or a GPU.

``esm2quinox.ESM2`` runs one sequence at a time (batches through ``jax.vmap``) and
normalises every attention row before multiplying by the values. This module computes
the same logits from the same weights (to float32 rounding, about 1e-5) for a whole
batch at once, laid out for XLA:

* the batch and the residues are folded into one matrix for every projection, so each
  projection is one large matmul;
* attention runs as ``(batch, heads, T, T)`` batched matmuls;
* the softmax's division is deferred until after the values are mixed in: the
  ``T × T`` weights are exponentiated once and the ``T × d`` result is divided by the
  row sums, which saves a full pass over the ``T × T`` matrix per head and layer
  (about a third of the forward time on a 2-core CPU);
* for sequences longer than 256 tokens, queries are processed in blocks of 64: XLA's
  CPU attention ran 4-8x slower once the score matrix's rows passed 256 (measured:
  8 x 20 heads x 302 tokens, 82 ms whole vs 16 ms in blocks of 64; 256 tokens, 9 ms);
* the layers are unrolled (no ``lax.scan``), which XLA on a CPU runs faster.

Training and fine-tuning keep using the model's own ``__call__`` (it is what gradients
flow through); this is for scoring: masked marginals, wild-type marginals, embeddings.

Example::

    logits = esm2_logits(model, tokens)      # tokens (B, T) -> logits (B, T, 33)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .tokens import MASK, PAD

__all__ = ["esm2_logits", "esm2_logits_at", "esm2_hidden"]

# ESM2's training masked 15% of residues, 80% of those with <mask>; with token dropout the
# mask embeddings are zeroed and the rest rescaled by the observed masking rate.
_TRAIN_MASK_RATIO = 0.15 * 0.8
# Added to the attention logits of padding keys (exp(-1e4) is exactly 0 in float32).
_PAD_BIAS = -1e4
# Longer than this, attention runs over blocks of _QUERY_BLOCK queries (see above).
_WHOLE_ATTENTION_MAX = 256
_QUERY_BLOCK = 64


def _layer_norm(x, weight, bias, eps: float = 1e-5):
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(-1, keepdims=True)
    return xc * jax.lax.rsqrt(var + eps) * weight + bias


def _input_embedding(model, tokens: Int[Array, "B T"]) -> Float[Array, "B T D"]:
    x = model.logit_head.linear2.weight[tokens]  # ESM2 ties the embedding to the output projection
    not_pad = tokens != PAD
    if model.token_dropout:
        is_mask = tokens == MASK
        x = jnp.where(is_mask[..., None], 0.0, x)
        observed = is_mask.sum(-1) / not_pad.sum(-1)
        x = x * ((1 - _TRAIN_MASK_RATIO) / (1 - observed))[:, None, None]
    return jnp.where(not_pad[..., None], x, 0.0)


def _rotary(T: int, head_dim: int):
    inv_freq = 1.0 / (10000.0 ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    angle = jnp.arange(T, dtype=jnp.float32)[:, None] * inv_freq[None]
    angle = jnp.concatenate([angle, angle], axis=-1)
    return jnp.cos(angle), jnp.sin(angle)


def _rotate(z, cos, sin):
    half = z.shape[-1] // 2
    return z * cos + jnp.concatenate([-z[..., half:], z[..., :half]], axis=-1) * sin


def _attention(q, k, v, key_bias):
    """Softmax attention with the division deferred to the ``(…, T, d)`` result."""
    logits = jnp.einsum("bhsd,bhtd->bhst", q, k) + key_bias
    weights = jnp.exp(logits - logits.max(-1, keepdims=True))
    return jnp.einsum("bhst,bhtd->bhsd", weights, v) / weights.sum(-1, keepdims=True)


def _blocked_attention(q, k, v, key_bias):
    T = q.shape[2]
    if T <= _WHOLE_ATTENTION_MAX:
        return _attention(q, k, v, key_bias)
    blocks = [_attention(q[:, :, s:s + _QUERY_BLOCK], k, v, key_bias) for s in range(0, T, _QUERY_BLOCK)]
    return jnp.concatenate(blocks, axis=2)


def _hidden(model, tokens: Int[Array, "B T"], rows: Int[Array, " B"] | None = None):
    """Final hidden states ``(B, T, D)``; with ``rows``, only ``(B, D)`` at ``tokens[b, rows[b]]``.

    Only one position per sequence is needed for a masked marginal, so the last layer
    then computes its queries, attention and feed-forward for that row alone (keys and
    values still come from every token): the same numbers, about a sixth less work for
    ESM2-8M.
    """
    B, T = tokens.shape
    D, H = model.embed_size, model.num_heads
    d = D // H
    scale = d ** -0.5
    x = _input_embedding(model, tokens)
    cos, sin = _rotary(T, d)
    key_bias = jnp.where(tokens != PAD, 0.0, _PAD_BIAS)[:, None, None, :]
    L = model.layers
    attn = L.attn

    def heads(z, n):  # (B*n, D) -> (B, H, n, d)
        return z.reshape(B, n, H, d).transpose(0, 2, 1, 3)

    for i in range(model.num_layers):
        last = i == model.num_layers - 1 and rows is not None
        y = _layer_norm(x, L.layer_norm1.weight[i], L.layer_norm1.bias[i])
        k = heads(y.reshape(B * T, D) @ attn.key_proj.weight[i].T + attn.key_proj.bias[i], T)
        v = heads(y.reshape(B * T, D) @ attn.value_proj.weight[i].T + attn.value_proj.bias[i], T)
        k = _rotate(k, cos, sin)
        if last:  # from here on, one row per sequence
            batch = jnp.arange(B)
            x, y = x[batch, rows][:, None], y[batch, rows][:, None]
            qcos, qsin = cos[rows][:, None, None], sin[rows][:, None, None]
        else:
            qcos, qsin = cos, sin
        n = x.shape[1]
        q = heads(y.reshape(B * n, D) @ attn.query_proj.weight[i].T + attn.query_proj.bias[i], n)
        q = _rotate(q, qcos, qsin) * scale
        mixed = _blocked_attention(q, k, v, key_bias).transpose(0, 2, 1, 3).reshape(B * n, D)
        x = x + (mixed @ attn.output_proj.weight[i].T + attn.output_proj.bias[i]).reshape(B, n, D)
        y = _layer_norm(x, L.layer_norm2.weight[i], L.layer_norm2.bias[i]).reshape(B * n, D)
        y = jax.nn.gelu(y @ L.linear1.weight[i].T + L.linear1.bias[i], approximate=False)
        x = x + (y @ L.linear2.weight[i].T + L.linear2.bias[i]).reshape(B, n, D)
    x = _layer_norm(x, model.layer_norm.weight, model.layer_norm.bias)
    return x[:, 0] if rows is not None else x


@eqx.filter_jit
def esm2_hidden(model, tokens: Int[Array, "B T"]) -> Float[Array, "B T D"]:
    """The final hidden states (after the last LayerNorm), as ``jax.vmap(model)(tokens).hidden``."""
    return _hidden(model, jnp.asarray(tokens))


def _head(model, hidden: Float[Array, "... D"]) -> Float[Array, "... 33"]:
    lh = model.logit_head
    z = jax.nn.gelu(hidden @ lh.linear1.weight.T + lh.linear1.bias, approximate=False)
    z = _layer_norm(z, lh.layer_norm.weight, lh.layer_norm.bias)
    return z @ lh.linear2.weight.T + lh.linear2.bias


@eqx.filter_jit
def esm2_logits(model, tokens: Int[Array, "B T"]) -> Float[Array, "B T 33"]:
    """The masked-LM logits of a batch, as ``jax.vmap(model)(tokens).logits``.

    Arguments:
        model: an :class:`esm2quinox.ESM2` (any size).
        tokens: ``(B, T)`` token ids (``<cls> residues <eos>``, padded with ``<pad>``).

    Returns:
        ``(B, T, 33)`` logits over ESM2's alphabet.
    """
    return _head(model, _hidden(model, jnp.asarray(tokens)))


@eqx.filter_jit
def esm2_logits_at(model, tokens: Int[Array, "B T"], rows: Int[Array, " B"]) -> Float[Array, "B 33"]:
    """The logits of each sequence at one token, ``esm2_logits(model, tokens)[b, rows[b]]``,
    without the last layer's work at the other tokens (what a masked marginal needs)."""
    return _head(model, _hidden(model, jnp.asarray(tokens), jnp.asarray(rows)))
