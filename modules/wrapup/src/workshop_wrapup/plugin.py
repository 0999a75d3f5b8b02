"""The wrap-up module's declaration: plain data, no JAX."""

from workshop import Check, Demo, HardwareNeeds, Lesson, ModuleDeclaration, hookimpl

P = "workshop_wrapup"


@hookimpl
def workshop_module():
    return ModuleDeclaration(
        name="wrapup",
        title="Beyond one device, and more of the ecosystem",
        summary=(
            "The last 15 minutes and the path beyond: meshes, NamedSharding and PartitionSpec, jit letting the "
            "compiler insert collectives, shard_map for explicit per-device code, data-parallel training on 1-8 "
            "(simulated) devices, and two JAX processes computing one result with jax.distributed. Then three "
            "short science examples: a Sérsic galaxy fitted with Optimistix, its posterior with NumPyro's NUTS, "
            "and a matrix-free Tikhonov deconvolution with Lineax."
        ),
        minutes=15,
        package=P,
        distribution="workshop-wrapup",
        path="modules/wrapup",
        lessons=[
            Lesson("01_sharding", "Meshes, shardings and automatic parallelism", "lessons/01_sharding.py", minutes=5),
            Lesson("02_shard_map", "shard_map, and more than one process", "lessons/02_shard_map.py", minutes=4),
            Lesson("03_optimistix_lineax", "Fitting a galaxy (Optimistix) and deconvolving an image (Lineax)",
                   "lessons/03_optimistix_lineax.py", minutes=4),
            Lesson("04_numpyro", "Uncertainty: the posterior of a galaxy's parameters (NumPyro)",
                   "lessons/04_numpyro.py", minutes=2),
        ],
        checks=[
            Check("shard_batch", f"{P}.checks.parallel:shard_batch", lesson="01_sharding",
                  summary="put a batch on the mesh with its rows split over the 'data' axis"),
            Check("sum_of_squares", f"{P}.checks.parallel:sum_of_squares", lesson="02_shard_map",
                  summary="a global sum of squares with shard_map: a local sum, then psum"),
            Check("sersic_residuals", f"{P}.checks.ecosystem:sersic_residuals", lesson="03_optimistix_lineax",
                  summary="the noise-normalised residuals of a PSF-convolved Sérsic model"),
            Check("fit_galaxy", f"{P}.checks.ecosystem:fit_galaxy", lesson="03_optimistix_lineax",
                  summary="fit the Sérsic parameters with optimistix.least_squares"),
            Check("normal_operator", f"{P}.checks.ecosystem:normal_operator", lesson="03_optimistix_lineax",
                  summary="K^T K + lambda I as a matrix-free Lineax operator"),
            Check("sersic_model", f"{P}.checks.ecosystem:sersic_model", lesson="04_numpyro",
                  summary="a NumPyro model: Sérsic priors and a Gaussian pixel likelihood"),
        ],
        demos=[
            Demo("tour", f"{P}.demos.tour:tour", "sharding on 8 simulated devices, two processes, Optimistix, NumPyro, Lineax",
                 minutes=4),
            Demo("sharding", f"{P}.demos.parallel:sharding",
                 "meshes, shardings, collectives, shard_map, data-parallel throughput vs device count", minutes=2),
            Demo("multihost", f"{P}.demos.parallel:multihost", "two JAX processes on 127.0.0.1 computing one result", minutes=0.5),
            Demo("sersic", f"{P}.demos.ecosystem:sersic", "Sérsic fit (Optimistix) and posterior (NumPyro NUTS)", minutes=1),
            Demo("deconvolution", f"{P}.demos.ecosystem:deconvolution", "Tikhonov deconvolution with a matrix-free Lineax operator",
                 minutes=0.5),
        ],
        default_demo="tour",
        presets={
            "tiny": "16-pixel images on 1-8 simulated devices (astro U-Net on 1 and 8, no protein step); 32-pixel galaxy, "
                    "100 + 100 NUTS steps; seconds per part",
            "cpu": "32-pixel images, batch 32, astro U-Net and protein fine-tune on 1-8 devices; 48-pixel galaxy, "
                   "300 + 400 NUTS steps; 64-pixel deconvolution",
            "gpu": "64-pixel images, batch 64; 64-pixel galaxy, 500 + 1000 NUTS steps; 128-pixel deconvolution",
            "full": "batch 128 over every device; 1000 + 2000 NUTS steps",
        },
        hardware=HardwareNeeds(min_ram_gb=4, accelerator="optional",
                               note="sharding runs on simulated CPU devices; several real accelerators show real speed-ups"),
    )
