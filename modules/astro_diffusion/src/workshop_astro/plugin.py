"""The declaration of the ``astro`` module: plain data, no JAX.

Two parts share this module and this file:

* the toy part (lessons 01-06): SDEs, score matching, reverse processes, Diffrax sampling
  and exact likelihoods on 2-D data; lists ``_TOY_*``;
* the galaxy part (lessons 07+): U-Net score models on galaxy images; lists ``_GALAXY_*``.

Each part edits only its own lists.
"""

from __future__ import annotations

from workshop import Check, DataEntry, Demo, HardwareNeeds, Lesson, ModuleDeclaration, hookimpl

# --- toy part: lessons 01-06 -------------------------------------------------------------

_TOY_LESSONS: list[Lesson] = [
    Lesson("01_forward_marginal", "The forward process and its marginal", "lessons/01_forward_marginal.py", minutes=15),
    Lesson("02_watching_data_diffuse", "Watching data diffuse", "lessons/02_watching_data_diffuse.py", minutes=10),
    Lesson("03_score_matching", "The score and denoising score matching", "lessons/03_score_matching.py", minutes=20),
    Lesson("04_reverse_sde_vs_ode", "Reverse SDE vs probability-flow ODE", "lessons/04_reverse_sde_vs_ode.py", minutes=15),
    Lesson("05_sampling_with_diffrax", "Sampling with Diffrax", "lessons/05_sampling_with_diffrax.py", minutes=15),
    Lesson("06_likelihood", "Exact likelihood through the probability-flow ODE", "lessons/06_likelihood.py", minutes=15),
]

_TOY_CHECKS: list[Check] = [
    Check("vp_marginal", "workshop_astro.checks.toy:vp_marginal", lesson="01_forward_marginal",
          summary="mean and std of x(t) given x(0) under the VP SDE"),
    Check("perturb", "workshop_astro.checks.toy:perturb", lesson="01_forward_marginal",
          summary="draw x(t) from x(0) for a batch of times in one line"),
    Check("em_step", "workshop_astro.checks.toy:em_step", lesson="02_watching_data_diffuse",
          summary="one Euler-Maruyama step of the forward SDE"),
    Check("gaussian_score", "workshop_astro.checks.toy:gaussian_score", lesson="03_score_matching",
          summary="the score of an isotropic Gaussian"),
    Check("dsm_loss", "workshop_astro.checks.toy:dsm_loss", lesson="03_score_matching",
          summary="the denoising score matching loss with sigma^2 weighting"),
    Check("reverse_sde_drift", "workshop_astro.checks.toy:reverse_sde_drift", lesson="04_reverse_sde_vs_ode",
          summary="the drift of the reverse-time SDE"),
    Check("probability_flow_drift", "workshop_astro.checks.toy:probability_flow_drift", lesson="04_reverse_sde_vs_ode",
          summary="the velocity of the probability-flow ODE"),
    Check("probability_flow_solve", "workshop_astro.checks.toy:probability_flow_solve", lesson="05_sampling_with_diffrax",
          summary="solve the probability-flow ODE from noise to data with diffrax (Tsit5 + PID)"),
    Check("sliced_wasserstein", "workshop_astro.checks.toy:sliced_wasserstein", lesson="05_sampling_with_diffrax",
          summary="the sliced Wasserstein distance between two point clouds"),
    Check("divergence", "workshop_astro.checks.toy:divergence", lesson="06_likelihood",
          summary="the exact divergence of a vector field with jax.jacfwd"),
    Check("hutchinson_divergence", "workshop_astro.checks.toy:hutchinson_divergence", lesson="06_likelihood",
          summary="Hutchinson's unbiased divergence estimate with one JVP"),
]

_TOY_DEMOS: list[Demo] = [
    Demo("toy", "workshop_astro.demos.toy:toy",
         "2-D diffusion end to end: train an MLP score, sample with the reverse SDE and the ODE, metric, NFE, figures",
         minutes=1),
]

_TOY_DATASETS: list[DataEntry] = []

# --- galaxy part: lessons 07+ (edited by the galaxy part only) -----------------------------

_GALAXY_LESSONS: list[Lesson] = [
    Lesson("07_unet_forward", "A U-Net for galaxy images", "lessons/07_unet_forward.py", minutes=15),
    Lesson("08_training_step", "Training to a time budget", "lessons/08_training_step.py", minutes=15),
    Lesson("09_few_step_sampling", "Sampling in a few steps", "lessons/09_few_step_sampling.py", minutes=15),
    Lesson("10_evaluation", "Measuring the science", "lessons/10_evaluation.py", minutes=15),
    Lesson("11_pretrained_and_reconstruction", "Generating with a pretrained model, and reconstructing observations",
           "lessons/11_pretrained_and_reconstruction.py", minutes=20),
]
_GALAXY_CHECKS: list[Check] = [
    Check("upsample_nearest", "workshop_astro.checks.galaxies:upsample_nearest", lesson="07_unet_forward",
          summary="nearest-neighbour x2 upsampling of a (C, H, W) feature map"),
    Check("time_features", "workshop_astro.checks.galaxies:time_features", lesson="07_unet_forward",
          summary="sinusoidal features of the diffusion time"),
    Check("time_conditioned_block", "workshop_astro.checks.galaxies:time_conditioned_block", lesson="07_unet_forward",
          summary="condition a residual block on time: FiLM scale and shift inside the block"),
    Check("standardise", "workshop_astro.checks.galaxies:standardise", lesson="08_training_step",
          summary="standardise galaxy images per channel over the images and pixels"),
    Check("unstandardise", "workshop_astro.checks.galaxies:unstandardise", lesson="08_training_step",
          summary="map standardised samples back to images"),
    Check("eps_matching_loss", "workshop_astro.checks.galaxies:eps_matching_loss", lesson="08_training_step",
          summary="the noise-prediction loss on a batch of images"),
    Check("ema_update", "workshop_astro.checks.galaxies:ema_update", lesson="08_training_step",
          summary="the exponential moving average of a model's weights over a pytree"),
    Check("ddim_step", "workshop_astro.checks.galaxies:ddim_step", lesson="09_few_step_sampling",
          summary="one deterministic DDIM / first-order DPM-Solver++ step"),
    Check("final_denoise", "workshop_astro.checks.galaxies:final_denoise", lesson="09_few_step_sampling",
          summary="the sampler's last step: the denoised estimate at t_eps, not the noisy iterate"),
    Check("half_light_radius", "workshop_astro.checks.galaxies:half_light_radius", lesson="10_evaluation",
          summary="the half-light radius of a galaxy image"),
    Check("tweedie_denoise", "workshop_astro.checks.galaxies:tweedie_denoise", lesson="11_pretrained_and_reconstruction",
          summary="Tweedie's denoised estimate from the score"),
    Check("psnr", "workshop_astro.checks.galaxies:psnr", lesson="11_pretrained_and_reconstruction",
          summary="peak signal-to-noise ratio of a reconstruction"),
]
_GALAXY_DEMOS: list[Demo] = [
    Demo("galaxies", "workshop_astro.demos.galaxies:galaxies",
         "train a U-Net on real HDF galaxies within --budget, sample in 20 steps, measure morphology vs held-out",
         minutes=5),
    Demo("generate", "workshop_astro.demos.pretrained:generate",
         "16 galaxies of 64x64 from the pretrained model with the few-step sampler", minutes=1),
    Demo("reconstruct", "workshop_astro.demos.pretrained:reconstruct",
         "deblur and inpaint a held-out galaxy by posterior sampling; PSNR and chi2 vs Richardson-Lucy and Wiener",
         minutes=1),
]
_GALAXY_DATASETS: list[DataEntry] = [
    DataEntry("hdf_stamps_32.npz", sha256="77cf70aa8269b47581b9f3d999a756ddf3337d895cd8d6c92333046afb3b88b2",
              embedded="data/hdf_stamps_32.npz", size=934686,
              description="368 training + 100 held-out 32x32 RGB galaxy stamps cut from the Hubble Deep Field "
                          "(spatially separate strips); recipe datasets/astro_hdf_stamps.py",
              source="skimage.data.hubble_deep_field() (NASA/STScI, public domain)"),
    DataEntry("Galaxy10_DECals.h5", sha256="19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571",
              url="https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5",
              description="Galaxy10 DECals: 17,736 RGB 256x256 galaxy images in 10 morphology classes; "
                          "workshop_astro.galaxies.galaxy10_processor(resolution) downsamples it once",
              source="astroNN (Leung & Bovy); DESI Legacy Imaging Surveys / Galaxy Zoo DECaLS"),
    DataEntry("unet64_hdf.eqx", sha256="cc1545a8e6e81d1ef2cbf236ab63ecf6bfe4729d4a1f346aff391641a536232e",
              embedded="data/unet64_hdf.eqx", size=2273464,
              description="pretrained 64x64 EDM denoiser around a U-Net (EMA weights, bfloat16) trained on HDF stamps; "
                          "recipe datasets/astro_pretrain_64.py, datasheet datasets/astro_pretrain_64.md",
              source="trained here from skimage.data.hubble_deep_field() (NASA/STScI, public domain)"),
]
_DEFAULT_DEMO: str | None = "galaxies"

# -------------------------------------------------------------------------------------------


@hookimpl
def workshop_module() -> ModuleDeclaration:
    return ModuleDeclaration(
        name="astro",
        title="Diffusion models for astronomy",
        summary=(
            "Continuous-time diffusion models with JAX, Equinox and Diffrax: forward SDEs and "
            "their marginals, denoising score matching, sampling with the reverse SDE and the "
            "probability-flow ODE, exact likelihoods; first on 2-D toy data with a known score, "
            "then on real galaxy images."
        ),
        minutes=100,
        package="workshop_astro",
        distribution="workshop-astro",
        path="modules/astro_diffusion",
        lessons=[*_TOY_LESSONS, *_GALAXY_LESSONS],
        checks=[*_TOY_CHECKS, *_GALAXY_CHECKS],
        demos=[*_TOY_DEMOS, *_GALAXY_DEMOS],
        datasets=[*_TOY_DATASETS, *_GALAXY_DATASETS],
        default_demo=_DEFAULT_DEMO,
        presets={
            "tiny": "seconds: a few hundred toy training steps, small sample counts (tests, CI, notebooks)",
            "cpu": "a laptop: the toy trains in well under a minute; small galaxy U-Net trained with the EDM "
                   "recipe in the 5-minute budget",
            "gpu": "one accelerator: longer toy training, larger galaxy U-Net (3x3 residual blocks) and batches",
            "full": "a large accelerator: the full-size galaxy runs",
        },
        hardware=HardwareNeeds(min_ram_gb=4, accelerator="optional",
                               note="the toy part runs on any laptop CPU; galaxies benefit from a GPU"),
    )
