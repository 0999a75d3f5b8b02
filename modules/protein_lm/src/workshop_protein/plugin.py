"""The declaration of the "protein" module (plain data: no JAX is imported here).

Two halves of the module are declared side by side and combined at the end:

* the language-model half (``_LM_*``): tokens, ESM2 models, masked-LM predictions,
  mutation-effect scores;
* the structure half (``_STRUCT_*``): fine-tuning, contact maps and folding, design.
"""

from workshop import Check, Command, DataEntry, Demo, HardwareNeeds, Lesson, ModuleDeclaration, hookimpl

# --- Language-model half: tokens, models, masked LM, mutation effects -------------------
_LM_LESSONS: list[Lesson] = [
    Lesson("01_attention", "Attention and the transformer layer", "lessons/01_attention.py", minutes=15),
    Lesson("02_masked_lm", "ESM2 as a masked language model", "lessons/02_masked_lm.py", minutes=15),
    Lesson("03_mutations", "Zero-shot mutation effects", "lessons/03_mutations.py", minutes=15),
    Lesson("07_dms", "Are the mutation scores right? Zero-shot against a deep mutational scan", "lessons/07_dms.py",
           minutes=15),
]
_LM_CHECKS: list[Check] = [
    Check("scaled_dot_product_attention", "workshop_protein.checks.lm:scaled_dot_product_attention", lesson="01_attention",
          summary="softmax(q kᵀ/√d) v with a mask, returning output and weights"),
    Check("multi_head_attention", "workshop_protein.checks.lm:multi_head_attention", lesson="01_attention",
          summary="split into heads, attend per head with vmap, concatenate, project"),
    Check("mask_tokens", "workshop_protein.checks.lm:mask_tokens", lesson="02_masked_lm",
          summary="put <mask> at 0-based residue positions (after <cls>)"),
    Check("masked_lm_loss", "workshop_protein.checks.lm:masked_lm_loss", lesson="02_masked_lm",
          summary="cross-entropy of the true tokens at the masked positions only"),
    Check("wildtype_marginal", "workshop_protein.checks.lm:wildtype_marginal", lesson="03_mutations",
          summary="log p(mutant) - log p(wild type) from one unmasked pass"),
    Check("masked_marginal_table", "workshop_protein.checks.lm:masked_marginal_table", lesson="03_mutations",
          summary="mask each position alone (vmap) and score every substitution"),
    Check("additive_score", "workshop_protein.checks.lm:additive_score", lesson="03_mutations",
          summary="score a multi-mutant 'A4G:R10W' as the sum of its single-mutant scores"),
    Check("mutant_position", "workshop_protein.checks.dms:mutant_position", lesson="07_dms",
          summary="a mutation in the paper's numbering ('G290A', offset 289) -> 0-based index in the sequence"),
    Check("variant_scores", "workshop_protein.checks.dms:variant_scores", lesson="07_dms",
          summary="additive masked-marginal scores of a table's variants, offset handled, wild type verified"),
    Check("zero_shot_spearman", "workshop_protein.checks.dms:zero_shot_spearman", lesson="07_dms",
          summary="Spearman's rho of measured fitness and scores, wild-type rows left out"),
]
_LM_DEMOS: list[Demo] = [
    Demo(
        "tour",
        "workshop_protein.demos.lm:tour",
        "masked-LM predictions, a mutation-effect heatmap, a contact map and a short fine-tune",
        minutes=3,
    ),
    Demo("dms", "workshop_protein.demos.dms:zero_shot",
         "zero-shot scores (masked/wild-type marginal, pseudo-likelihood) vs BLOSUM62 and amino-acid frequency "
         "on three real deep mutational scans (GB1, Abeta42, TDP-43), Spearman with bootstrap intervals",
         minutes=3),
]
_LM_DATASETS: list[DataEntry] = [
    DataEntry(
        "protein_embedded_model.npz",
        sha256="6fe3186e5f8c1da94924f61b402f7435b80397b4c6c5986eb7909ccee082af02",
        embedded="data/protein_embedded_model.npz",
        size=3264503,
        description="small ESM2-architecture masked LM (4 layers, width 128) pretrained for the workshop; "
        "the default model when no pretrained ESM2 is cached",
        source="trained by datasets/protein_pretrain_embedded.py on a bacterial proteome shipped in pyhmmer's "
        "test data (MIT); see datasets/protein_embedded_model.md",
    ),
]

# The published ESM2 checkpoints and their contact regressions, at the URLs fair-esm
# downloads from. No checksum is published: they are pinned on first use.
_ESM2_SIZES = {"esm2_t6_8M_UR50D": "30 MB", "esm2_t12_35M_UR50D": "130 MB",
               "esm2_t30_150M_UR50D": "570 MB", "esm2_t33_650M_UR50D": "2.5 GB"}
_ESM2_SOURCE = ("published by Meta AI with fair-esm (MIT licence; Lin et al. 2023, Science 379:1123); no "
                "checksum is published, so the first download is pinned; see datasets/protein_esm2.md")
_ESM2_DATASETS: list[DataEntry] = [
    entry
    for name, size in _ESM2_SIZES.items()
    for entry in (
        DataEntry(f"{name}.pt", url=f"https://dl.fbaipublicfiles.com/fair-esm/models/{name}.pt", pin=True,
                  description=f"pretrained ESM2 weights {name} (about {size})", source=_ESM2_SOURCE),
        DataEntry(f"{name}-contact-regression.pt", pin=True,
                  url=f"https://dl.fbaipublicfiles.com/fair-esm/regression/{name}-contact-regression.pt",
                  description=f"the contact regression of {name} (a few kB)", source=_ESM2_SOURCE),
    )
]

# --- Structure half: fine-tuning, contacts and folding, design --------------------------
_STRUCT_LESSONS: list[Lesson] = [
    Lesson("04_finetune", "Fine-tuning ESM2 on labelled sequences", "lessons/04_finetune.py", minutes=20),
    Lesson("05_contacts", "Contacts from attention, and a 3-D fold", "lessons/05_contacts.py", minutes=20),
    Lesson("06_design", "Designing sequences by simulated annealing", "lessons/06_design.py", minutes=15),
]
_STRUCT_CHECKS: list[Check] = [
    Check("masked_mean_pool", "workshop_protein.checks.structure:masked_mean_pool", lesson="04_finetune",
          summary="mean-pool embeddings over residues, ignoring padding"),
    Check("spearman_rho", "workshop_protein.checks.structure:spearman_rho", lesson="04_finetune",
          summary="Spearman's rank correlation"),
    Check("apc", "workshop_protein.checks.structure:apc", lesson="05_contacts",
          summary="the average product correction of attention maps"),
    Check("top_precision", "workshop_protein.checks.structure:top_precision", lesson="05_contacts",
          summary="precision of the top-k predicted contacts at a minimum separation"),
    Check("pairwise_distances", "workshop_protein.checks.structure:pairwise_distances", lesson="05_contacts",
          summary="differentiable pairwise distances of a Cα trace"),
    Check("metropolis_accept", "workshop_protein.checks.structure:metropolis_accept", lesson="06_design",
          summary="the Metropolis acceptance rule for maximisation"),
    Check("geometric_temperature", "workshop_protein.checks.structure:geometric_temperature", lesson="06_design",
          summary="a geometric cooling schedule"),
]
_STRUCT_DEMOS: list[Demo] = [
    Demo("finetune", "workshop_protein.demos.structure:finetune",
         "fine-tune ESM2 on real peptides (antimicrobial vs transmembrane): frozen head, then full", minutes=3),
    Demo("contacts", "workshop_protein.demos.structure:contacts",
         "contact maps from attention on real proteins, precision, and 3-D Cα folds with RMSD", minutes=3),
    Demo("design", "workshop_protein.demos.structure:design",
         "design peptides a fine-tuned classifier calls antimicrobial; a leaderboard", minutes=4),
    Demo("gb1", "workshop_protein.demos.fitness:gb1",
         "GB1 fitness regression: ESM2 frozen and fine-tuned vs additive and global-epistasis baselines, "
         "on held-out doubles (random and by position)", minutes=3),
]
_STRUCT_DATASETS: list[DataEntry] = [
    DataEntry(
        "structures_ca.npz",
        sha256="a1397fcbf81e8db9fb5d7ff558d0dd083b642e8408253a65fce7116fe6ab5b7a",
        embedded="data/structures_ca.npz",
        description="Cα/Cβ coordinates and sequences of 4 real protein chains (1A8O A, 1LCD A, 2XHE B, 7DDO C)",
        source="PDB entries (wwPDB, CC0) as shipped in Biopython 1.85's test data; datasets/protein_finetune_data.md",
    ),
    DataEntry(
        "amp_vs_tm.csv",
        sha256="c27e2642d3f9305674cbe11bad17b26e5cfc6261e79cee51829b9a14853fad05",
        embedded="data/amp_vs_tm.csv",
        description="412 peptides: antimicrobial (1) vs transmembrane (0), plus a sequence-derived GRAVY proxy column",
        source="modlAMP 4.3.3 AMPvsTMset (BSD-3-Clause); datasets/protein_finetune_data.md",
    ),
    DataEntry(
        "contact_head_embedded.npz",
        sha256="4228564926987e79fc7ae24e53c8dd7bafa851a61d1585ca44d454addb7a599a",
        embedded="data/contact_head_embedded.npz",
        description="contact regression (logistic, over layers x heads APC attention) fitted for the embedded model",
        source="fitted by datasets/protein_finetune_contact_regression.py on 3 real chains; protein_finetune_data.md",
    ),
]

# --- Deep mutational scans: zero-shot benchmark data (datasets/protein_dms.md) ----------
_DMS_SOURCE = "MAVE-NN 1.1.4 wheel (MIT) example data, built by datasets/protein_dms.py; datasets/protein_dms.md"
_DMS_DATASETS: list[DataEntry] = [
    DataEntry(
        "dms_gb1.csv.gz",
        sha256="fc4fa5969741d55a35915fae1a624525d3e4360115b6a52b14dee25bf6424d36",
        embedded="data/dms_gb1.csv.gz",
        size=38248,
        description="GB1 IgG-Fc binding DMS (Olson et al. 2014): a seeded sample of 5,000 of 530,737 double mutants",
        source=_DMS_SOURCE,
    ),
    DataEntry(
        "dms_gb1_additive_singles.csv.gz",
        sha256="3e8cca07a9606dcc433363131cc4b9d49d84fc5b0ca6184bb668b28cb2816638",
        embedded="data/dms_gb1_additive_singles.csv.gz",
        size=7427,
        description="GB1 single-mutant effects estimated (least squares, additive) from all 530,737 doubles; not measured",
        source=_DMS_SOURCE,
    ),
    DataEntry(
        "dms_abeta42.csv.gz",
        sha256="1f77a1adb83985ab7919dafe01ef5d50bcd6d72b2266666b912f4165f80b34fb",
        embedded="data/dms_abeta42.csv.gz",
        size=37469,
        description="Abeta42 nucleation DMS (Seuma et al. 2021): all 468 singles, 5,000 of 14,015 doubles",
        source=_DMS_SOURCE,
    ),
    DataEntry(
        "dms_tdp43.csv.gz",
        sha256="99177936b8b1e86697ab541e1102baad1f6f3bf3222578ba60deb850b4f7e68f",
        embedded="data/dms_tdp43.csv.gz",
        size=45446,
        description="TDP-43 290-373 toxicity DMS (Bolognesi et al. 2019): all 1,196 singles, 5,000 of 52,272 doubles",
        source=_DMS_SOURCE,
    ),
]


@hookimpl
def workshop_module():
    return ModuleDeclaration(
        name="protein",
        title="Protein language models with ESM2",
        summary=(
            "Attention and the transformer layer; ESM2 in Equinox as a masked language "
            "model over amino acids; zero-shot mutation effects (wild-type and masked "
            "marginals); fine-tuning, contact maps and 3-D folding, and sequence design."
        ),
        minutes=75,
        package="workshop_protein",
        distribution="workshop-protein",
        path="modules/protein_lm",
        lessons=[*_LM_LESSONS, *_STRUCT_LESSONS],
        checks=[*_LM_CHECKS, *_STRUCT_CHECKS],
        demos=[*_LM_DEMOS, *_STRUCT_DEMOS],
        commands=[
            Command("embed", "workshop_protein.cli:embed", "per-residue and mean-pooled embeddings of a FASTA (.npz)"),
            Command("score", "workshop_protein.cli:score", "zero-shot scores of a table of variants of a wild type (.csv)"),
        ],
        datasets=[*_LM_DATASETS, *_ESM2_DATASETS, *_STRUCT_DATASETS, *_DMS_DATASETS],
        default_demo="tour",
        presets={
            "tiny": "the embedded small model, short sequences, a few steps (seconds)",
            "cpu": "the embedded model (or a cached ESM2-8M), one protein end to end (minutes)",
            "gpu": "pretrained ESM2-35M/150M when cached, longer scans and fine-tuning",
            "full": "pretrained ESM2-650M when cached, full single-mutant scans of long proteins",
        },
        hardware=HardwareNeeds(
            min_ram_gb=4,
            accelerator="optional",
            note="Runs on a laptop CPU with the embedded model; pretrained ESM2 weights are used when cached.",
        ),
    )
