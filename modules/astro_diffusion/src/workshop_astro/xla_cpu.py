"""XLA compiler options that make the galaxy networks train and sample faster on a CPU.

XLA's CPU backend hands some operations to YNNPACK, a kernel library; in jaxlib 0.10.2
its defaults include single convolutions. For the ``cpu`` preset's network (3x3
convolutions of 16-32 channels on 32x32 stamps) XLA's own convolution is faster on two
threads than YNNPACK's, and letting YNNPACK also fuse the elementwise operations and
reductions around them saves more. Measured on a 2-core x86-64 machine (jaxlib 0.10.2,
alternating turns in one process): the ``cpu`` preset's training step (batch 32) 129-141
ms against 155-174 ms with XLA's defaults (1.18-1.30x, four runs over a day), one network
evaluation of the sampler on 100 stamps 82 ms against 118 ms (1.45x), and on 16 stamps of
the shipped 64x64 model 39 ms against 47 ms (1.2x).
``benchmarks/astro_unet_throughput.py`` (both compilations beside PyTorch, 2026-12-02)
trains the ``cpu`` network at 264 images/s against 221 (1.19x; 312 against 265 in a run
before the position inputs) and the 64x64 model at 112 against 85 (1.32x); the ``"mix"``
design (matrix products, no 3x3 convolutions) and the ``cpu`` network with GroupNorm are
within a few per cent either way (221 against 216 and 144 against 146 images/s; 0.94x and
0.93x in the earlier run). ``benchmarks/astro_xla_options.py`` finds no further XLA
option that helps by more than 3 %. On one thread the ``cpu`` training step is unchanged (220
against 218 ms). They are for these convolutional networks, not a global setting: a
transformer such as ESM2 (the protein module's, 6-12 layers) ran its forward pass at
0.56-0.63x and its gradient at 0.68-0.85x its speed with XLA's defaults.

The options change which kernels run, not what is computed: outputs agree with XLA's
defaults to rounding (weights after five Adam steps within 1e-4 relative).

:func:`compiler_options` gives them only where they were measured and apply: on the CPU
backend of an x86-64 machine (on ARM, such as Apple silicon, YNNPACK's and XLA's kernels
were not compared), and only if this jaxlib accepts them (an XLA without the option, or
with other names, keeps its defaults rather than failing). ``WORKSHOP_XLA_DEFAULTS=1`` in the environment turns them
off, to compare or to rule them out.
"""

from __future__ import annotations

import functools
import platform

#: The option (an XLA ``DebugOptions`` field) and the YNNPACK fusions it enables: matrix
#: products (alone and fused), elementwise operations and reductions, but not
#: convolutions, which XLA then runs itself.
OPTION = "xla_cpu_experimental_ynn_fusion_type"
YNN_FUSIONS = ("DOT", "INDIVIDUAL_DOT", "ELTWISE", "REDUCE")
#: ``platform.machine()`` names (lower case) of the processors the options were measured on.
X86_64 = ("x86_64", "amd64")
#: On (``1``, ``true``, ``yes``, ``on``) compiles with XLA's defaults; checked like the
#: core's own variables (``workshop doctor`` reports a value that is neither on nor off).
ENV_DEFAULTS = "WORKSHOP_XLA_DEFAULTS"


def requested_options() -> dict[str, str]:
    """The options as XLA takes them (``OPTION`` set to the enum names of ``YNN_FUSIONS``),
    whether or not this machine would use them (:func:`compiler_options` decides)."""
    return {OPTION: ",".join(f"LIBRARY_FUSION_TYPE_{kind}" for kind in YNN_FUSIONS)}


@functools.lru_cache(maxsize=None)
def compiler_options() -> dict[str, str]:
    """The options for ``jax.jit(..., compiler_options=...)``: ``{}`` off the CPU backend, on
    a machine that is not x86-64, when this jaxlib does not accept them, or when
    ``WORKSHOP_XLA_DEFAULTS`` is on.

    Decided once per process, by compiling a two-operation function with them. A value of
    ``WORKSHOP_XLA_DEFAULTS`` that is neither on nor off raises
    :class:`workshop.ConfigError` (a usage error that names the variable and the fix).
    """
    import jax
    import numpy as np
    from workshop import env_flag

    if env_flag(ENV_DEFAULTS):
        return {}
    if jax.default_backend() != "cpu" or platform.machine().lower() not in X86_64:
        return {}
    options = requested_options()
    try:
        jax.jit(lambda x: 2.0 * x + 1.0, compiler_options=options)(np.ones(2, np.float32)).block_until_ready()
    except Exception:  # an XLA without YNNPACK, or another name for the option: its defaults
        return {}
    return options


def filter_jit(fun):
    """``eqx.filter_jit(fun)`` compiled with :func:`compiler_options`, looked up at each call
    (so that importing a module that wraps a function does not start JAX's backend, and a
    change of the options, as in tests, compiles afresh instead of reusing a stale program)."""
    import equinox as eqx

    compiled: dict[tuple, object] = {}

    @functools.wraps(fun)
    def call(*args, **kwargs):
        options = compiler_options()
        key = tuple(sorted(options.items()))
        jitted = compiled.get(key)
        if jitted is None:
            jitted = compiled[key] = eqx.filter_jit(fun, compiler_options=options) if options else eqx.filter_jit(fun)
        return jitted(*args, **kwargs)

    return call
