"""A time-conditioned U-Net for galaxy images, designed for speed on a CPU.

Each resolution level has residual blocks (norm, SiLU, 3x3 conv, plus a projection of
the time embedding), optional self-attention at low resolution, a strided 3x3
convolution to go down and nearest-neighbour upsampling followed by a 3x3 convolution
to come back up. Measured on a 2-core CPU (``benchmarks/astro_unet_throughput.py``, results in
``benchmarks/results/``), a transposed convolution and group norm are
the expensive layers under ``vmap``; the upsampling here avoids the first, and the
normalisation is a choice (``norm="group"`` or ``norm="none"``).

The network predicts the noise ``eps`` that was added to ``x(0)``; the score is
``-eps / std(t)`` (:func:`score_from_eps`). It works on ONE image ``(C, H, W)`` and one
scalar time; ``jax.vmap`` batches it. Inside, the ``"res"`` design runs channels last
(``(H, W, C)``, the layout of XLA's CPU convolution: :func:`conv_hwc`) with the parameters
of Equinox's channels-first layers, so checkpoints do not depend on the layout.

Example::

    >>> import jax
    >>> net = UNet(UNetConfig(channels=16, mults=(1, 2)), key=jax.random.key(0))
    >>> net(jax.numpy.zeros((3, 32, 32)), 0.5).shape
    (3, 32, 32)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

__all__ = [
    "UNetConfig", "UNet", "PRESET_CONFIGS", "config_for", "score_from_eps", "count_params", "MixBlock", "Pointwise",
    "Depthwise3x3", "MultiHeadAttention", "space_to_depth", "depth_to_space", "conv_hwc", "pixel_coordinates",
]


@dataclass(frozen=True)
class UNetConfig:
    """The size of a :class:`UNet`.

    Arguments:
        image_channels: colour channels of the images (3 for RGB).
        channels: feature channels at full resolution.
        mults: channel multiplier per level; one level per entry, halving the size each time.
        blocks: residual blocks per level.
        attention_levels: indices of levels (0 = full resolution) that get self-attention.
        norm: ``"group"`` (GroupNorm) or ``"none"``.
        time_dim: width of the time embedding.
        patch: space-to-depth factor: the image is folded into ``patch x patch`` blocks
            (``C * patch**2`` channels at ``1/patch`` resolution) before the first conv and
            unfolded after the last; ``patch=2`` makes a 64x64 model cost about what a
            32x32 one does.
        input_skip: add ``w(t) * x + b(t)`` to the output, with ``w`` and ``b`` one number
            per channel computed from the time embedding. At high noise the best noise
            prediction is close to such an affine map of the input (exactly, for Gaussian
            data); learning it as two global numbers, instead of passing the input through
            every convolution, spares the outermost pixels, where zero padding makes that
            identity hard to learn (a short run otherwise leaves noisy stamp borders).
        block: ``"res"``: residual blocks of two 3x3 convolutions, strided-conv down and
            upsample + 3x3 conv up (the original design, and the shipped 64x64 model's);
            ``"mix"``: blocks whose work is matrix products, for XLA on a CPU (where a
            3x3 convolution runs at about 0.4x PyTorch's speed and a matmul at par): a
            depthwise 3x3 convolution mixes neighbours, a per-pixel MLP (two 1x1 products,
            ``mlp_ratio`` wide) mixes channels, modulated by the time (scale and shift);
            down and up are space-to-depth / depth-to-space with a 1x1 product; attention
            is multi-head over 1x1 projections. Use it with ``patch=2``.
        mlp_ratio: width of the per-pixel MLP of ``"mix"`` blocks, in output channels.
        head_channels: channels per attention head (``"mix"`` blocks).
        coords: two more input channels hold each pixel's position in the whole stamp
            (row and column, -1 to 1; :func:`pixel_coordinates`). With them the network
            can learn from crops of the stamps (``TrainConfig.crop_every``) and still know
            where in the stamp each crop lies; on whole stamps it is called as before
            (``net(x, t)``).
    """

    image_channels: int = 3
    channels: int = 32
    mults: tuple[int, ...] = (1, 2, 2)
    blocks: int = 1
    attention_levels: tuple[int, ...] = (2,)
    norm: str = "none"
    time_dim: int = 128
    patch: int = 1
    input_skip: bool = False
    block: str = "res"
    mlp_ratio: int = 2
    head_channels: int = 32
    coords: bool = False

    def __post_init__(self):
        if self.block not in ("res", "mix"):
            raise ValueError(f"UNetConfig.block must be 'res' or 'mix', got {self.block!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        d = dict(d)
        for k in ("mults", "attention_levels"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


#: U-Net sizes per hardware preset (32x32 images), plus ``cpu_mix``: the ``"mix"`` design
#: (XLA on a CPU runs convolutions at about 0.4x PyTorch's speed and matrix products at par).
PRESET_CONFIGS: dict[str, UNetConfig] = {
    "tiny": UNetConfig(channels=8, mults=(1, 2), blocks=1, attention_levels=(), time_dim=32, input_skip=True,
                       coords=True),
    "cpu": UNetConfig(channels=16, mults=(1, 2, 2), blocks=1, attention_levels=(2,), norm="none", time_dim=64,
                      input_skip=True, coords=True),
    "gpu": UNetConfig(channels=64, mults=(1, 2, 2, 2), blocks=2, attention_levels=(2,), norm="group", time_dim=256,
                      input_skip=True),
    "full": UNetConfig(channels=128, mults=(1, 2, 2, 2), blocks=2, attention_levels=(1, 2), norm="group", time_dim=512,
                       input_skip=True),
    # The matmul-heavy design for XLA on a CPU: space-to-depth 2, "mix" blocks at 16x16, 8x8 and
    # 4x4 (attention at the last two); 1.33 M parameters, 64.5 MFLOP per image forward against
    # 120 for "cpu", 0.75x its training-step time. At equal time it trained worse than "cpu"
    # with the EDM recipe in the one comparison there was time for (README), so it is not the
    # default yet.
    "cpu_mix": UNetConfig(channels=32, mults=(1, 2, 4), blocks=1, attention_levels=(1, 2), time_dim=128, patch=2,
                          input_skip=True, block="mix"),
}


def config_for(preset: str) -> UNetConfig:
    """The :class:`UNetConfig` of a hardware preset."""
    return PRESET_CONFIGS[preset]


def count_params(model: eqx.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))


def score_from_eps(eps: Float[Array, "..."], std: ArrayLike) -> Float[Array, "..."]:
    """The score ``grad log p_t(x) = -eps / std(t)`` of a noise prediction."""
    return -eps / std


class _Norm(eqx.Module):
    """GroupNorm (or nothing) over a channels-last ``(H, W, C)`` map; the parameters are
    those of ``eqx.nn.GroupNorm``, so checkpoints do not depend on the layout."""

    norm: eqx.nn.GroupNorm | None

    def __init__(self, channels: int, kind: str):
        if kind == "group":
            self.norm = eqx.nn.GroupNorm(min(8, channels), channels)
        elif kind == "none":
            self.norm = None
        else:
            raise ValueError(f"norm must be 'group' or 'none', got {kind!r}")

    def __call__(self, x: Float[Array, "h w c"]) -> Float[Array, "h w c"]:
        if self.norm is None:
            return x
        hh, ww, c = x.shape
        g = x.reshape(hh, ww, self.norm.groups, c // self.norm.groups)
        mu = jnp.mean(g, axis=(0, 1, 3), keepdims=True)
        var = jnp.mean((g - mu) ** 2, axis=(0, 1, 3), keepdims=True)
        out = ((g - mu) * jax.lax.rsqrt(var + self.norm.eps)).reshape(hh, ww, c)
        return out * self.norm.weight + self.norm.bias if self.norm.channelwise_affine else out


def conv_hwc(conv: eqx.nn.Conv2d, x: Float[Array, "h w c"]) -> Float[Array, "h2 w2 o"]:
    """Apply an ``eqx.nn.Conv2d`` (weights ``(O, I, kh, kw)``) to a channels-last map.

    XLA's CPU convolution works in ``NHWC``; fed ``(C, H, W)`` images it transposes around
    every convolution and its gradients. Channels first, the `cpu` network's training step
    took 166.5 ms against 152.8 channels last (inside ``train``'s step, 2 threads,
    alternating runs of 25 steps, 2026-12-01).
    """
    y = jax.lax.conv_general_dilated(x[None], conv.weight, conv.stride, conv.padding, rhs_dilation=conv.dilation,
                                     dimension_numbers=("NHWC", "OIHW", "NHWC"), feature_group_count=conv.groups)[0]
    return y if conv.bias is None else y + conv.bias.reshape(-1)


def pixel_coordinates(height: int, width: int | None = None) -> Float[Array, "2 h w"]:
    """Row and column of every pixel of a ``height x width`` stamp, each from -1 to 1.

    A crop of the stamp takes the same window of these maps, so the network that reads
    them (``UNetConfig.coords``) knows where the crop lies.

    >>> pixel_coordinates(3)[:, 0, 2].tolist()
    [-1.0, 1.0]
    """
    width = height if width is None else width
    rows = jnp.linspace(-1.0, 1.0, height, dtype=jnp.float32)
    cols = jnp.linspace(-1.0, 1.0, width, dtype=jnp.float32)
    return jnp.stack(jnp.meshgrid(rows, cols, indexing="ij"))


def time_embedding(t: ArrayLike, dim: int) -> Float[Array, " dim"]:
    """Sinusoidal features of ``t`` in ``[0, 1]`` (scaled by 1000, as in DDPM)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half) / max(half - 1, 1))
    angles = 1000.0 * jnp.asarray(t, jnp.float32) * freqs
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)])


class ResBlock(eqx.Module):
    """``x + conv(act(norm(conv(act(norm(x))) + W t_emb)))``, with a 1x1 skip when channels
    change, on a channels-last ``(H, W, C)`` map."""

    norm1: _Norm
    conv1: eqx.nn.Conv2d
    time_proj: eqx.nn.Linear
    norm2: _Norm
    conv2: eqx.nn.Conv2d
    skip: eqx.nn.Conv2d | None

    def __init__(self, cin: int, cout: int, time_dim: int, norm: str, *, key: PRNGKeyArray):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm1 = _Norm(cin, norm)
        self.conv1 = eqx.nn.Conv2d(cin, cout, 3, padding=1, key=k1)
        self.time_proj = eqx.nn.Linear(time_dim, cout, key=k2)
        self.norm2 = _Norm(cout, norm)
        conv2 = eqx.nn.Conv2d(cout, cout, 3, padding=1, key=k3)
        # Start each block close to the identity: the second conv begins small.
        self.conv2 = eqx.tree_at(lambda c: c.weight, conv2, conv2.weight * 0.1)
        self.skip = eqx.nn.Conv2d(cin, cout, 1, key=k4) if cin != cout else None

    def __call__(self, x: Float[Array, "h w c"], temb: Float[Array, " d"]) -> Float[Array, "h w c2"]:
        h = conv_hwc(self.conv1, jax.nn.silu(self.norm1(x)))
        h = h + self.time_proj(temb)
        h = conv_hwc(self.conv2, jax.nn.silu(self.norm2(h)))
        return h + (x if self.skip is None else conv_hwc(self.skip, x))


class Attention(eqx.Module):
    """Single-head self-attention over the pixels of a channels-last ``(H, W, C)`` map."""

    norm: _Norm
    qkv: eqx.nn.Conv2d
    out: eqx.nn.Conv2d

    def __init__(self, channels: int, norm: str, *, key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        self.norm = _Norm(channels, norm)
        self.qkv = eqx.nn.Conv2d(channels, 3 * channels, 1, key=k1)
        out = eqx.nn.Conv2d(channels, channels, 1, key=k2)
        self.out = eqx.tree_at(lambda c: c.weight, out, out.weight * 0.1)

    def __call__(self, x: Float[Array, "h w c"]) -> Float[Array, "h w c"]:
        hh, ww, c = x.shape
        q, k, v = jnp.split(conv_hwc(self.qkv, self.norm(x)).reshape(hh * ww, 3 * c), 3, axis=1)
        att = jax.nn.softmax(q @ k.T / math.sqrt(c), axis=-1)  # (hw, hw)
        return x + conv_hwc(self.out, (att @ v).reshape(hh, ww, c))


class Upsample(eqx.Module):
    """Nearest-neighbour x2 then a 3x3 conv (cheaper on CPU than a transposed conv), channels last."""

    conv: eqx.nn.Conv2d

    def __init__(self, cin: int, cout: int, *, key):
        self.conv = eqx.nn.Conv2d(cin, cout, 3, padding=1, key=key)

    def __call__(self, x: Float[Array, "h w c"]) -> Float[Array, "2h 2w c2"]:
        return conv_hwc(self.conv, jnp.repeat(jnp.repeat(x, 2, axis=0), 2, axis=1))


class Pointwise(eqx.Module):
    """A 1x1 convolution written as a matrix product over the channels (XLA's fast path on CPU)."""

    weight: Float[Array, "cout cin"]
    bias: Float[Array, " cout"]

    def __init__(self, cin: int, cout: int, *, key: PRNGKeyArray):
        lim = 1.0 / math.sqrt(cin)
        self.weight = jax.random.uniform(key, (cout, cin), minval=-lim, maxval=lim)
        self.bias = jnp.zeros((cout,))

    def __call__(self, x: Float[Array, "cin h w"]) -> Float[Array, "cout h w"]:
        return jnp.einsum("oc,chw->ohw", self.weight, x) + self.bias[:, None, None]


def _channel_norm(x, eps: float = 1e-5):
    # LayerNorm over the channels of each pixel, without parameters (the time modulation scales).
    mu = jnp.mean(x, axis=0, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=0, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps)


class Depthwise3x3(eqx.Module):
    """A depthwise 3x3 convolution (one filter per channel, zero padding) as nine shifted
    multiply-adds: XLA fuses them into one loop, about 3x faster on a CPU than its grouped
    convolution (measured, forward + backward, 64 channels at 16x16)."""

    weight: Float[Array, "c 3 3"]
    bias: Float[Array, " c"]

    def __init__(self, channels: int, *, key: PRNGKeyArray):
        self.weight = jax.random.uniform(key, (channels, 3, 3), minval=-1 / 3, maxval=1 / 3)
        self.bias = jnp.zeros((channels,))

    def __call__(self, x: Float[Array, "c h w"]) -> Float[Array, "c h w"]:
        _, hh, ww = x.shape
        xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1)))
        out = self.bias[:, None, None]
        for i in range(3):
            for j in range(3):
                out = out + xp[:, i:i + hh, j:j + ww] * self.weight[:, i, j, None, None]
        return out


class MixBlock(eqx.Module):
    """``skip(x) + out(silu(inner(norm(dw(x)) * (1 + scale(t)) + shift(t))))``: a depthwise 3x3
    convolution for space, a per-pixel MLP (1x1 products) for channels."""

    dw: Depthwise3x3
    time_proj: eqx.nn.Linear
    inner: Pointwise
    out: Pointwise
    skip: Pointwise | None

    def __init__(self, cin: int, cout: int, time_dim: int, mlp_ratio: int, *, key: PRNGKeyArray):
        k1, k2, k3, k4, k5 = jax.random.split(key, 5)
        self.dw = Depthwise3x3(cin, key=k1)
        self.time_proj = eqx.nn.Linear(time_dim, 2 * cin, key=k2)
        self.inner = Pointwise(cin, mlp_ratio * cout, key=k3)
        out = Pointwise(mlp_ratio * cout, cout, key=k4)
        self.out = eqx.tree_at(lambda m: m.weight, out, out.weight * 0.1)
        self.skip = Pointwise(cin, cout, key=k5) if cin != cout else None

    def __call__(self, x: Float[Array, "c h w"], temb: Float[Array, " d"]) -> Float[Array, "c2 h w"]:
        scale, shift = jnp.split(self.time_proj(temb), 2)
        h = _channel_norm(self.dw(x)) * (1 + scale[:, None, None]) + shift[:, None, None]
        h = self.out(jax.nn.silu(self.inner(h)))
        return h + (x if self.skip is None else self.skip(x))


class MultiHeadAttention(eqx.Module):
    """Multi-head self-attention over the pixels of a ``(C, H, W)`` map, projections as matmuls."""

    heads: int = eqx.field(static=True)
    qkv: Pointwise
    out: Pointwise

    def __init__(self, channels: int, head_channels: int, *, key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        self.heads = max(1, channels // head_channels)
        self.qkv = Pointwise(channels, 3 * channels, key=k1)
        out = Pointwise(channels, channels, key=k2)
        self.out = eqx.tree_at(lambda m: m.weight, out, out.weight * 0.1)

    def __call__(self, x):
        c, h, w = x.shape
        d = c // self.heads
        q, k, v = jnp.split(self.qkv(_channel_norm(x)).reshape(3, self.heads, d, h * w), 3)
        att = jax.nn.softmax(jnp.einsum("hdi,hdj->hij", q[0], k[0]) / math.sqrt(d), axis=-1)
        return x + self.out(jnp.einsum("hij,hdj->hdi", att, v[0]).reshape(c, h, w))


def space_to_depth(x: Float[Array, "c h w"], p: int) -> Float[Array, "c*p*p h/p w/p"]:
    """Fold ``p x p`` blocks of pixels into channels (PyTorch's ``pixel_unshuffle`` order)."""
    c, hh, ww = x.shape
    return x.reshape(c, hh // p, p, ww // p, p).transpose(0, 2, 4, 1, 3).reshape(c * p * p, hh // p, ww // p)


def depth_to_space(x: Float[Array, "c h w"], p: int) -> Float[Array, "c/(p*p) h*p w*p"]:
    """The inverse of :func:`space_to_depth` (PyTorch's ``pixel_shuffle``)."""
    cp, hh, ww = x.shape
    c = cp // (p * p)
    return x.reshape(c, p, p, hh, ww).transpose(0, 3, 1, 4, 2).reshape(c, hh * p, ww * p)


class PatchDown(eqx.Module):
    """Halve the resolution: space-to-depth, then a 1x1 product back to ``cout`` channels."""

    proj: Pointwise

    def __init__(self, cin: int, cout: int, *, key):
        self.proj = Pointwise(4 * cin, cout, key=key)

    def __call__(self, x):
        return self.proj(space_to_depth(x, 2))


class PatchUp(eqx.Module):
    """Double the resolution: a 1x1 product to ``4 cout`` channels, then depth-to-space."""

    proj: Pointwise

    def __init__(self, cin: int, cout: int, *, key):
        self.proj = Pointwise(cin, 4 * cout, key=key)

    def __call__(self, x):
        return depth_to_space(self.proj(x), 2)


class UNet(eqx.Module):
    """Noise-predicting U-Net ``eps(x, t)`` for one ``(C, H, W)`` image.

    Arguments:
        config: the :class:`UNetConfig`.
        key: PRNG key for the initial weights.

    ``H`` and ``W`` must be divisible by ``2 ** (len(config.mults) - 1)``.
    """

    config: UNetConfig = eqx.field(static=True)
    time_mlp: eqx.nn.MLP
    stem: eqx.nn.Conv2d
    down_blocks: list
    down_attn: list
    downsamples: list
    mid1: ResBlock
    mid_attn: Attention | None
    mid2: ResBlock
    up_blocks: list
    up_attn: list
    upsamples: list
    head_norm: _Norm
    head: eqx.nn.Conv2d | Pointwise
    input_skip: eqx.nn.Linear | None

    def __init__(self, config: UNetConfig = UNetConfig(), *, key: PRNGKeyArray):
        self.config = config
        keys = iter(jax.random.split(key, 256))
        C, td, nrm = config.channels, config.time_dim, config.norm
        self.time_mlp = eqx.nn.MLP(td, td, td, depth=1, activation=jax.nn.silu, key=next(keys))
        pp = config.patch**2
        mix = config.block == "mix"
        if mix:
            def ResBlock(cin, cout, td, nrm, *, key):  # noqa: N802 - the block of this design
                return MixBlock(cin, cout, td, config.mlp_ratio, key=key)

            def Attention(c, nrm, *, key):  # noqa: N802
                return MultiHeadAttention(c, config.head_channels, key=key)
        else:
            ResBlock, Attention = _RES_BLOCK, _ATTENTION  # noqa: N806
        cin = (config.image_channels + 2 * config.coords) * pp
        self.stem = (Pointwise(cin, C, key=next(keys)) if mix else
                     eqx.nn.Conv2d(cin, C, 3, padding=1, key=next(keys)))
        chans = [C * m for m in config.mults]
        self.down_blocks, self.down_attn, self.downsamples = [], [], []
        skips = [C]
        cin = C
        for lvl, cout in enumerate(chans):
            blocks, attn = [], []
            for _ in range(config.blocks):
                blocks.append(ResBlock(cin, cout, td, nrm, key=next(keys)))
                attn.append(Attention(cout, nrm, key=next(keys)) if lvl in config.attention_levels else None)
                cin = cout
                skips.append(cin)
            self.down_blocks.append(blocks)
            self.down_attn.append(attn)
            if lvl < len(chans) - 1:
                self.downsamples.append(PatchDown(cin, cin, key=next(keys)) if mix else
                                        eqx.nn.Conv2d(cin, cin, 3, stride=2, padding=1, key=next(keys)))
                skips.append(cin)
        self.mid1 = ResBlock(cin, cin, td, nrm, key=next(keys))
        self.mid_attn = Attention(cin, nrm, key=next(keys)) if config.attention_levels else None
        self.mid2 = ResBlock(cin, cin, td, nrm, key=next(keys))
        self.up_blocks, self.up_attn, self.upsamples = [], [], []
        for lvl in reversed(range(len(chans))):
            cout = chans[lvl]
            blocks, attn = [], []
            for _ in range(config.blocks + 1):
                blocks.append(ResBlock(cin + skips.pop(), cout, td, nrm, key=next(keys)))
                attn.append(Attention(cout, nrm, key=next(keys)) if lvl in config.attention_levels else None)
                cin = cout
            self.up_blocks.append(blocks)
            self.up_attn.append(attn)
            if lvl > 0:
                self.upsamples.append(PatchUp(cin, cin, key=next(keys)) if mix else Upsample(cin, cin, key=next(keys)))
        self.head_norm = _Norm(cin, "none" if mix else nrm)
        head = (Pointwise(cin, config.image_channels * pp, key=next(keys)) if mix else
                eqx.nn.Conv2d(cin, config.image_channels * pp, 3, padding=1, key=next(keys)))
        self.head = eqx.tree_at(lambda c: c.weight, head, head.weight * 0.1)
        if config.input_skip:
            lin = eqx.nn.Linear(td, 2 * config.image_channels, key=next(keys))
            self.input_skip = eqx.tree_at(lambda m: m.weight, lin, lin.weight * 0.1)
        else:
            self.input_skip = None

    def __call__(self, x: Float[Array, "c h w"], t: ArrayLike,
                 coords: Float[Array, "2 h w"] | None = None) -> Float[Array, "c h w"]:
        """The output for ONE image ``x`` at time ``t``; ``coords`` (``config.coords`` only)
        are the positions of its pixels in the whole stamp, by default the whole stamp's."""
        temb = self.time_mlp(time_embedding(t, self.config.time_dim))
        mix = self.config.block == "mix"
        p = self.config.patch
        h = x
        if self.config.coords:
            h = jnp.concatenate([x, pixel_coordinates(*x.shape[1:]) if coords is None else coords])
        elif coords is not None:
            raise ValueError("this network was built without coordinate inputs (UNetConfig.coords=False); "
                             "call it without coords")
        # "res" blocks work channels last (XLA's convolution layout, see conv_hwc), "mix"
        # blocks channels first; the network's input and output are (C, H, W) either way.
        h = space_to_depth(h, p) if p > 1 else h
        h = self.stem(h) if mix else conv_hwc(self.stem, h.transpose(1, 2, 0))
        cat = 0 if mix else -1
        hs = [h]
        n = len(self.down_blocks)
        for lvl in range(n):
            for block, attn in zip(self.down_blocks[lvl], self.down_attn[lvl]):
                h = block(h, temb)
                if attn is not None:
                    h = attn(h)
                hs.append(h)
            if lvl < n - 1:
                h = self.downsamples[lvl](h) if mix else conv_hwc(self.downsamples[lvl], h)
                hs.append(h)
        h = self.mid1(h, temb)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        h = self.mid2(h, temb)
        for i in range(n):
            for block, attn in zip(self.up_blocks[i], self.up_attn[i]):
                h = block(jnp.concatenate([h, hs.pop()], axis=cat), temb)
                if attn is not None:
                    h = attn(h)
            if i < n - 1:
                h = self.upsamples[i](h)
        if mix:
            out = self.head(jax.nn.silu(_channel_norm(h)))
        else:
            out = conv_hwc(self.head, jax.nn.silu(self.head_norm(h))).transpose(2, 0, 1)
        if p > 1:
            out = depth_to_space(out, p)
        if self.input_skip is not None:
            w, b = jnp.split(self.input_skip(temb), 2)
            out = out + w[:, None, None] * x + b[:, None, None]
        return out


_RES_BLOCK, _ATTENTION = ResBlock, Attention


def init_unet(config: UNetConfig, seed: int = 0) -> UNet:
    """A :class:`UNet` with weights drawn by NumPy: the same distributions as the
    Equinox initialisers (uniform in ``+-1/sqrt(fan_in)``, biases zero, norms identity,
    residual outputs scaled by 0.1), but without compiling any random-number program,
    which takes tens of seconds on a busy CPU.
    """
    import numpy as np

    abstract = eqx.filter_eval_shape(lambda: UNet(config, key=jax.random.key(0)))
    rng = np.random.default_rng(seed)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(abstract)
    out = []
    for path, leaf in leaves:
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            out.append(leaf)
            continue
        name = jax.tree_util.keystr(path)
        shape = leaf.shape
        if name.endswith(".weight") and len(shape) >= 2:
            lim = 1.0 / math.sqrt(math.prod(shape[1:]))
            w = rng.uniform(-lim, lim, shape)
            if any(s in name for s in (".conv2.", ".out.", ".head.", ".input_skip.")):
                w = 0.1 * w
        elif name.endswith(".weight") and "norm" in name:
            w = np.ones(shape)
        else:
            w = np.zeros(shape)
        out.append(jnp.asarray(w, dtype=leaf.dtype))
    return jax.tree_util.tree_unflatten(treedef, out)
