"""The U-Net: shapes, time conditioning, initialisation, patching."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import pytest

from workshop_astro.unet import (
    PRESET_CONFIGS, Depthwise3x3, UNet, UNetConfig, conv_hwc, count_params, depth_to_space, init_unet, score_from_eps,
    space_to_depth, time_embedding,
)


def test_shapes_for_every_preset_config_and_batch():
    for name in ("tiny", "cpu"):
        net = init_unet(PRESET_CONFIGS[name], seed=0)
        out = jax.eval_shape(jax.vmap(net), jax.ShapeDtypeStruct((5, 3, 32, 32), jnp.float32),
                             jax.ShapeDtypeStruct((5,), jnp.float32))
        assert out.shape == (5, 3, 32, 32)
    big = init_unet(PRESET_CONFIGS["gpu"], seed=0)
    assert count_params(big) > count_params(init_unet(PRESET_CONFIGS["cpu"])) > count_params(init_unet(PRESET_CONFIGS["tiny"]))


def test_forward_depends_on_time_and_input_and_patching_round_trips():
    cfg = UNetConfig(channels=8, mults=(1, 2), attention_levels=(1,), time_dim=16, norm="group")
    net = eqx.filter_jit(lambda n, x, t: n(x, t))
    model = init_unet(cfg, seed=0)
    x = jax.random.normal(jax.random.key(1), (3, 16, 16))
    a, b = net(model, x, 0.1), net(model, x, 0.9)
    assert a.shape == (3, 16, 16) and bool(jnp.all(jnp.isfinite(a)))
    assert float(jnp.abs(a - b).max()) > 1e-4  # the time embedding reaches the output
    assert float(jnp.abs(net(model, x + 1.0, 0.1) - a).max()) > 1e-4
    # patch=2 folds 2x2 blocks into channels and back: a 32x32 image in, 32x32 out, and the
    # fold is a pure permutation (the stem sees each pixel exactly once)
    pcfg = UNetConfig(channels=8, mults=(1, 2), attention_levels=(), time_dim=16, patch=2)
    y = jax.eval_shape(init_unet(pcfg), jax.ShapeDtypeStruct((3, 32, 32), jnp.float32), 0.5)
    assert y.shape == (3, 32, 32)


def test_numpy_init_matches_equinox_structure_and_scale():
    cfg = PRESET_CONFIGS["tiny"]
    a = init_unet(cfg, seed=0)
    b = eqx.filter_eval_shape(lambda: UNet(cfg, key=jax.random.key(0)))  # Equinox's own init, shapes only
    sa, sb = jax.tree_util.tree_structure(a), jax.tree_util.tree_structure(b)
    assert sa == sb
    for la, lb in zip(jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_array)), jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_array))):
        assert la.shape == lb.shape and la.dtype == lb.dtype
    w = np.asarray(a.stem.weight)
    lim = 1 / np.sqrt(np.prod(w.shape[1:]))
    assert np.abs(w).max() <= lim and np.abs(w).max() > 0.5 * lim
    # reproducible by seed, different across seeds
    assert np.array_equal(np.asarray(init_unet(cfg, 0).stem.weight), w)
    assert not np.array_equal(np.asarray(init_unet(cfg, 1).stem.weight), w)
    # a fresh network predicts small noise, so the initial loss is close to 1
    out = a(jnp.zeros((3, 32, 32)), 0.5)
    assert float(jnp.abs(out).mean()) < 0.5


def test_input_skip_adds_a_time_dependent_affine_map_of_the_input():
    cfg = UNetConfig(channels=8, mults=(1, 2), attention_levels=(), time_dim=16, patch=2, input_skip=True)
    model = init_unet(cfg, seed=0)
    plain = eqx.tree_at(lambda m: m.input_skip, model, None, is_leaf=lambda v: v is None)
    x = jax.random.normal(jax.random.key(2), (3, 16, 16))
    for t in (0.1, 0.7):
        w, b = jnp.split(model.input_skip(model.time_mlp(time_embedding(t, cfg.time_dim))), 2)
        expected = plain(x, t) + w[:, None, None] * x + b[:, None, None]
        np.testing.assert_allclose(model(x, t), expected, rtol=1e-5, atol=1e-6)
        assert float(jnp.abs(w).max()) > 0  # not a dead branch
    # the numbers depend on t, and the branch is saved and restored with the config
    w1 = model.input_skip(model.time_mlp(time_embedding(0.1, 16)))
    w2 = model.input_skip(model.time_mlp(time_embedding(0.7, 16)))
    assert float(jnp.abs(w1 - w2).max()) > 1e-4
    assert UNetConfig.from_dict(cfg.as_dict()) == cfg
    assert UNetConfig.from_dict({k: v for k, v in cfg.as_dict().items() if k != "input_skip"}).input_skip is False


def _reference_chw(model, x, t):
    """The "res" network computed channels first with Equinox's own layers (``Conv2d``,
    ``GroupNorm``): the layout the checkpoints were trained in."""
    cfg = model.config
    silu, cat = jax.nn.silu, jnp.concatenate
    norm = lambda n, h: h if n.norm is None else n.norm(h)  # noqa: E731
    temb = model.time_mlp(time_embedding(t, cfg.time_dim))

    def res(b, h):
        g = b.conv1(silu(norm(b.norm1, h))) + b.time_proj(temb)[:, None, None]
        return b.conv2(silu(norm(b.norm2, g))) + (h if b.skip is None else b.skip(h))

    def att(a, h):
        c, hh, ww = h.shape
        q, k, v = jnp.split(a.qkv(norm(a.norm, h)).reshape(3 * c, hh * ww), 3)
        w = jax.nn.softmax(q.T @ k / np.sqrt(c), axis=-1)
        return h + a.out((v @ w.T).reshape(c, hh, ww))

    h = model.stem(space_to_depth(x, cfg.patch) if cfg.patch > 1 else x)
    hs, n = [h], len(model.down_blocks)
    for lvl in range(n):
        for b, a in zip(model.down_blocks[lvl], model.down_attn[lvl]):
            h = res(b, h)
            h = h if a is None else att(a, h)
            hs.append(h)
        if lvl < n - 1:
            h = model.downsamples[lvl](h)
            hs.append(h)
    h = res(model.mid2, att(model.mid_attn, res(model.mid1, h)) if model.mid_attn else res(model.mid1, h))
    for i in range(n):
        for b, a in zip(model.up_blocks[i], model.up_attn[i]):
            h = res(b, cat([h, hs.pop()], axis=0))
            h = h if a is None else att(a, h)
        if i < n - 1:
            h = model.upsamples[i].conv(jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2))
    out = model.head(silu(norm(model.head_norm, h)))
    out = depth_to_space(out, cfg.patch) if cfg.patch > 1 else out
    w, b = jnp.split(model.input_skip(temb), 2)
    return out + w[:, None, None] * x + b[:, None, None]


@pytest.mark.parametrize("norm", ["group", "none"])
def test_channels_last_network_equals_the_channels_first_layers(norm):
    # The "res" design runs channels last (XLA's convolution layout on a CPU) with the
    # parameters of Equinox's channels-first layers, so every checkpoint keeps its meaning.
    cfg = UNetConfig(channels=8, mults=(1, 2, 2), attention_levels=(2,), time_dim=16, norm=norm, patch=2,
                     input_skip=True)
    model = init_unet(cfg, seed=0)
    leaves, tdef = jax.tree_util.tree_flatten(model)
    rng = np.random.default_rng(3)  # perturb every weight, bias and norm scale away from its init
    model = jax.tree_util.tree_unflatten(tdef, [v + 0.05 * rng.normal(size=v.shape).astype(np.float32)
                                                if eqx.is_inexact_array(v) else v for v in leaves])
    x = jax.random.normal(jax.random.key(5), (3, 32, 32))
    for t in (0.05, 0.6):
        ref = _reference_chw(model, x, t)
        np.testing.assert_allclose(model(x, t), ref, rtol=1e-4, atol=1e-5 * float(jnp.abs(ref).max()))


def test_score_from_eps():
    assert np.allclose(score_from_eps(jnp.array([1.0, -2.0]), 0.5), [-2.0, 4.0])


def test_mix_design_is_matmul_blocks_and_depends_on_time_and_input():
    cfg = UNetConfig(channels=16, mults=(1, 2), attention_levels=(1,), time_dim=16, patch=2, block="mix",
                     head_channels=8, input_skip=True)
    model = init_unet(cfg, seed=0)
    # no convolution layer anywhere: depthwise shifts and matrix products only
    layers = jax.tree_util.tree_leaves(model, is_leaf=lambda m: isinstance(m, (eqx.nn.Conv2d, Depthwise3x3)))
    assert not any(isinstance(m, eqx.nn.Conv2d) for m in layers)
    assert any(isinstance(m, Depthwise3x3) for m in layers)
    dw = model.down_blocks[0][0].dw
    y = jax.random.normal(jax.random.key(4), (16, 8, 8))
    ref = jax.lax.conv_general_dilated(y[None], dw.weight[:, None], (1, 1), ((1, 1), (1, 1)), feature_group_count=16)[0]
    assert np.allclose(dw(y), ref + dw.bias[:, None, None], atol=1e-5)  # the same as a grouped convolution
    assert model.down_attn[1][0].heads == 4
    # t as an array is traced: one compilation serves every time (a Python float would be static)
    net = eqx.filter_jit(lambda n, x, t: n(x, t))
    x = jax.random.normal(jax.random.key(1), (3, 16, 16))
    t1, t9 = jnp.float32(0.1), jnp.float32(0.9)
    a, b = net(model, x, t1), net(model, x, t9)
    assert a.shape == (3, 16, 16) and bool(jnp.all(jnp.isfinite(a)))
    assert float(jnp.abs(a - b).max()) > 1e-5
    assert float(jnp.abs(net(model, x + 0.5, t1) - a).max()) > 1e-5
    with pytest.raises(ValueError, match="block must be"):
        UNetConfig(block="transformer")


def test_space_to_depth_round_trips_and_matches_pixel_unshuffle_order():
    x = jnp.arange(2 * 4 * 4, dtype=jnp.float32).reshape(2, 4, 4)
    y = space_to_depth(x, 2)
    assert y.shape == (8, 2, 2) and np.array_equal(depth_to_space(y, 2), x)
    # channel c*4 + i*2 + j holds pixel (2h + i, 2w + j) of channel c (PyTorch's pixel_unshuffle)
    assert float(y[1, 0, 0]) == float(x[0, 0, 1]) and float(y[2, 1, 0]) == float(x[0, 3, 0])


def test_conv_hwc_is_the_equinox_convolution_channels_last():
    # strides, padding, dilation and groups as Equinox's Conv2d has them
    x = jax.random.normal(jax.random.key(6), (4, 9, 9))
    for kw in (dict(), dict(stride=2, padding=1), dict(padding=2, dilation=2), dict(groups=2, padding=1)):
        conv = eqx.nn.Conv2d(4, 6, 3, key=jax.random.key(7), **kw)
        np.testing.assert_allclose(conv_hwc(conv, x.transpose(1, 2, 0)).transpose(2, 0, 1), conv(x), rtol=1e-5, atol=1e-5)


def test_coordinate_inputs_default_to_the_whole_stamp_and_a_crop_reads_its_own():
    from workshop_astro.unet import pixel_coordinates

    cfg = UNetConfig(channels=8, mults=(1, 2), attention_levels=(), time_dim=16, input_skip=True, coords=True)
    model = init_unet(cfg, seed=0)
    assert model.stem.weight.shape[1] == 5  # three colours and the two position maps
    x = jax.random.normal(jax.random.key(1), (3, 16, 16))
    np.testing.assert_allclose(model(x, 0.3), model(x, 0.3, pixel_coordinates(16)), rtol=1e-6, atol=1e-6)
    # a crop's positions are a window of the stamp's, and the output depends on them
    grid = pixel_coordinates(32)
    top_left, bottom_right = grid[:, :16, :16], grid[:, 16:, 16:]
    assert float(top_left.min()) == -1.0 and float(bottom_right.max()) == 1.0
    assert not np.allclose(model(x, 0.3, top_left), model(x, 0.3, bottom_right))
    with pytest.raises(ValueError, match="coords=False"):
        init_unet(UNetConfig(channels=8, mults=(1, 2), attention_levels=(), time_dim=16), seed=0)(x, 0.3, top_left)
