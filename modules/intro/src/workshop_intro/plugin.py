"""The declaration of the ``intro`` module: plain data, no JAX.

The first hour of the workshop: from NumPy and SciPy to the JAX the astro and protein
modules need, ending with a Langevin warm-up that previews score-based sampling.
"""

from __future__ import annotations

from workshop import Check, Demo, HardwareNeeds, Lesson, ModuleDeclaration, hookimpl

_C = "workshop_intro.checks."  # a check is _C + "<its lesson's file in checks/>:<function>"

LESSONS: list[Lesson] = [
    Lesson("01_numpy_api", "JAX's NumPy API: what carries over and what does not", "lessons/01_numpy_api.py", minutes=10),
    Lesson("02_transforms", "Function transforms: jit, vmap, grad, jacobians, scan", "lessons/02_transforms.py", minutes=12),
    Lesson("03_pytrees", "Pytrees: parameters as nested containers, Equinox modules, filtering",
           "lessons/03_pytrees.py", minutes=8),
    Lesson("04_trace_vs_run", "Trace time vs run time: printing, retracing, control flow, NaNs, devices",
           "lessons/04_trace_vs_run.py", minutes=10),
    Lesson("05_ecosystem", "Ecosystem tour: Equinox + Optax, Diffrax, Lineax", "lessons/05_ecosystem.py", minutes=8),
    Lesson("06_langevin", "Warm-up: Langevin dynamics with an exact score, and annealing", "lessons/06_langevin.py",
           minutes=12),
]

CHECKS: list[Check] = [
    Check("set_diagonal", _C + "numpy_api:set_diagonal", lesson="01_numpy_api",
          summary="return a copy of a matrix with its diagonal set, with .at[] (the input stays unchanged)"),
    Check("two_normals", _C + "numpy_api:two_normals", lesson="01_numpy_api",
          summary="two independent normal samples from one key, by splitting it"),
    Check("pairwise_sq_distances", _C + "transforms:pairwise_sq_distances", lesson="02_transforms",
          summary="all pairwise squared distances with two nested vmaps"),
    Check("loss_and_grad", _C + "transforms:loss_and_grad", lesson="02_transforms",
          summary="a least-squares loss and its gradient in the weights with value_and_grad"),
    Check("jacobian", _C + "transforms:jacobian", lesson="02_transforms",
          summary="the Jacobian of a map from R^3 to R^2 with jax.jacfwd"),
    Check("ar1_trajectory", _C + "transforms:ar1_trajectory", lesson="02_transforms",
          summary="an AR(1) trajectory with lax.scan"),
    Check("sgd_step", _C + "pytrees:sgd_step", lesson="03_pytrees",
          summary="one gradient-descent step on a nested dict of parameters with jax.tree.map"),
    Check("scale_weights", _C + "pytrees:scale_weights", lesson="03_pytrees",
          summary="scale the arrays of an Equinox model, leaving its other fields alone (eqx.partition)"),
    Check("piecewise", _C + "trace_vs_run:piecewise", lesson="04_trace_vs_run",
          summary="a piecewise function that works under jit, vmap and grad (no Python if)"),
    Check("newton_sqrt", _C + "trace_vs_run:newton_sqrt", lesson="04_trace_vs_run",
          summary="Newton's square root with lax.while_loop, under jit"),
    Check("power_static", _C + "trace_vs_run:power_static", lesson="04_trace_vs_run",
          summary="jit a function whose loop length is a static argument"),
    Check("safe_norm", _C + "trace_vs_run:safe_norm", lesson="04_trace_vs_run",
          summary="a vector norm whose gradient at zero is finite (no NaN)"),
    Check("mlp_loss", _C + "ecosystem:mlp_loss", lesson="05_ecosystem",
          summary="the mean squared error of an Equinox MLP over a batch (vmap the model)"),
    Check("solve_spd", _C + "ecosystem:solve_spd", lesson="05_ecosystem",
          summary="solve a symmetric positive definite system with Lineax"),
    Check("mixture_score", _C + "langevin:mixture_score", lesson="06_langevin",
          summary="the score of a Gaussian mixture as the grad of its log density"),
    Check("langevin_step", _C + "langevin:langevin_step", lesson="06_langevin",
          summary="one step of unadjusted Langevin dynamics"),
]

DEMOS: list[Demo] = [
    Demo("tour", "workshop_intro.demos.tour:tour",
         "live tour on this machine: jit speed-up and compile time, vmap vs loop, grad vs finite "
         "differences, and the Langevin figure", minutes=1),
]


@hookimpl
def workshop_module() -> ModuleDeclaration:
    return ModuleDeclaration(
        name="intro",
        title="JAX for NumPy users, and a Langevin warm-up",
        summary=(
            "The first hour: JAX's NumPy API (immutability, float32, explicit random keys), the function "
            "transforms (jit, vmap, grad, jacobians, scan), pytrees and Equinox, trace time vs run time, "
            "a tour of Optax, Diffrax and Lineax, and Langevin sampling of a 2-D Gaussian mixture with its "
            "exact score, where annealing over noise levels fixes what plain Langevin gets wrong."
        ),
        minutes=60,
        package="workshop_intro",
        distribution="workshop-intro",
        path="modules/intro",
        lessons=LESSONS,
        checks=CHECKS,
        demos=DEMOS,
        default_demo="tour",
        presets={
            "tiny": "small arrays, 1-2 timing repeats, 400 Langevin particles: seconds",
            "cpu": "1000x1000 matrices for timing, 2000 particles, 1000 Langevin steps: under a minute",
            "gpu": "larger arrays for timing, 10000 particles",
            "full": "the largest timing sizes, 50000 particles",
        },
        hardware=HardwareNeeds(min_ram_gb=2, accelerator="optional",
                               note="everything runs on a laptop CPU; an accelerator makes the jit speed-ups larger"),
    )
