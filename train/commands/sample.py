"""``ponita sample``: sample molecules from a generator; ``ponita evaluate-molecules``: EDM's metrics of molecules."""

import argparse
import json
import math
import time
from pathlib import Path

from ponita.datasets._rdkit import require_rdkit

from ._common import UsageError


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Adds ``sample`` and ``evaluate-molecules``."""
    from ponita.models import KARRAS_CHURN, KARRAS_DEFAULT_STEPS, KARRAS_SIGMA_MAX, SAMPLERS

    sample = commands.add_parser(
        "sample", help="sample molecules from a generator written by `ponita train qm9-edm`",
        description="Sample molecules: a 'vp' generator with EDM's ancestral sampler or deterministic DDIM (fewer "
        "--steps: respaced), a 'karras' generator with the Heun sampler; same --seed, same molecules.",
    )
    sample.add_argument("checkpoint", help="generator.pt written by `ponita train qm9-edm`")
    sample.add_argument("-n", "--num", type=int, default=100, help="molecules to sample (default 100)")
    sample.add_argument("-o", "--out", default="samples.sdf", help="output .sdf (RDKit, EDM's bonds) or .xyz")
    sample.add_argument("--n-atoms", type=int, help="atoms per molecule (default: drawn from the training histogram)")
    sample.add_argument("--steps", type=int,
                        help=f"sampler steps (default: all T of a 'vp' generator, {KARRAS_DEFAULT_STEPS} Heun steps of "
                        "a 'karras' one)")
    sample.add_argument("--sampler", choices=SAMPLERS,
                        help="'vp' generators: EDM's ancestral sampler (default) or deterministic DDIM; 'karras' "
                        "generators: heun")
    sample.add_argument("--spacing", type=float,
                        help="with fewer --steps, visit the times T·(k/K)^SPACING: 1 uniform, 2 (default) denser "
                        "near the data, where fewer steps lose the most")
    sample.add_argument("--sigma-max", type=float, default=KARRAS_SIGMA_MAX,
                        help=f"heun: the noise level (Å) it starts from (default {KARRAS_SIGMA_MAX:g})")
    sample.add_argument("--churn", type=float, default=KARRAS_CHURN,
                        help=f"heun: stochasticity S_churn (default {KARRAS_CHURN:g}; 0: deterministic after the "
                        "start)")
    sample.add_argument("--guide",
                        help="heun: a weaker generator of the same data (e.g. the same recipe trained shorter) that "
                        "guides this one (autoguidance; up to twice the denoiser calls)")
    sample.add_argument("--guidance", type=float, default=3.0,
                        help="with --guide: the weight w of D_guide + w (D - D_guide) for the positions (default "
                        "3; 1: no guidance)")
    sample.add_argument("--guidance-range", type=float, nargs=2, default=(0.0, 0.25), metavar=("LOW", "HIGH"),
                        help="with --guide: the noise levels (Å) that are guided (default 0 0.25)")
    sample.add_argument("--guide-features", action="store_true",
                        help="with --guide: guide the atom-type features too (collapsed some molecules in "
                        "docs/generation.md's screen)")
    sample.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                        help="the denoiser's matrix products: fp32 (default), bf16 (1.75× faster on a CPU with "
                        "avx512_bf16, the same quality; ≈ 30× slower on CPUs without native bf16), or auto: bf16 "
                        "where it measures faster here")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--batch-size", type=int, default=100, help="molecules per batch")
    sample.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to sample (default cpu)")
    sample.add_argument("--metrics", action="store_true", help="print EDM's metrics and write them next to --out")
    sample.add_argument("--novelty", action="store_true",
                        help="with --metrics: also novelty against EDM's QM9 training molecules (≈ 1 min once)")
    sample.add_argument("--image", help="draw the molecules (RDKit, first 50) into this PNG")
    sample.set_defaults(handler=_sample)

    evaluate = commands.add_parser(
        "evaluate-molecules", help="EDM's metrics (stability, validity, uniqueness) of molecules in an SDF or XYZ file",
        description="Atom and molecule stability, validity and uniqueness exactly as EDM computes them (bonds from "
        "distances), for molecules from any generator.",
    )
    evaluate.add_argument("file", help="SDF (RDKit) or any ASE-readable file, e.g. multi-frame XYZ")
    evaluate.add_argument("--json", help="write the metrics to this JSON file")
    evaluate.add_argument("--novelty", action="store_true", help="also novelty against EDM's QM9 training molecules")
    evaluate.add_argument("--details", action="store_true",
                          help="also where stability fails: the unstable atoms by element and bond orders over or "
                          "under the valence")
    evaluate.set_defaults(handler=_evaluate_molecules)


def _sample(args: argparse.Namespace) -> int:
    import torch

    from ponita.datasets import draw_molecules, molecule_metrics, write_molecules
    from ponita.models import DEFAULT_SPACING, Autoguidance, default_sample_steps, describe_model, read_checkpoint

    from .._machine import choose_precision
    from ..deploy._sampling import sample_molecules

    out = Path(args.out)
    if out.suffix.lower() not in (".sdf", ".xyz") or out.is_dir() or not out.resolve().parent.is_dir():
        raise UsageError(f"-o {out} must be a .sdf or .xyz file in an existing folder.")
    image = Path(args.image) if args.image else None
    if image is not None and (image.suffix.lower() != ".png" or not image.resolve().parent.is_dir()):
        raise UsageError(f"--image {image} must be a .png file in an existing folder.")
    if args.spacing is not None and not 0 < args.spacing < math.inf:
        raise UsageError(f"--spacing must be a finite number > 0, got {args.spacing}.")
    if args.num < 1 or args.batch_size < 1 or (args.n_atoms is not None and not 1 <= args.n_atoms <= 100):
        raise UsageError(f"-n and --batch-size must be ≥ 1 and --n-atoms in 1..100; got {args.num}, "
                         f"{args.batch_size}, {args.n_atoms}.")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda, but torch sees no CUDA GPU here; use --device cpu.")
    needs_rdkit = [name for name, needed in (("an .sdf output", out.suffix.lower() == ".sdf"),
                                             ("--image", image is not None), ("--metrics", args.metrics)) if needed]
    if needs_rdkit:
        require_rdkit(needs_rdkit[0])  # before sampling
    checkpoint = read_checkpoint(args.checkpoint)
    if checkpoint.model_class != "EDM":
        raise UsageError(f"{args.checkpoint} holds {describe_model(checkpoint.model_class)}, not a generator; pass the "
                         "generator.pt of `ponita train qm9-edm`.")
    model = checkpoint.build(args.device)
    karras = model.config.objective == "karras"
    sampler = args.sampler or ("heun" if karras else "ancestral")
    if karras != (sampler == "heun"):
        raise UsageError(f"--sampler {sampler} does not fit this generator (objective {model.config.objective!r}); "
                         f"use {'heun' if karras else 'ancestral or ddim'}.")
    if not 0 < args.sigma_max < math.inf or not 0 <= args.churn < math.inf:
        raise UsageError(f"--sigma-max must be a finite number > 0 and --churn ≥ 0; got {args.sigma_max}, "
                         f"{args.churn}.")
    guidance = None
    if args.guide is not None:
        if not karras:
            raise UsageError(f"--guide guides the Heun sampler of 'karras' generators; {args.checkpoint} is "
                             f"{model.config.objective!r}.")
        guide = read_checkpoint(args.guide)
        if guide.model_class != "EDM":
            raise UsageError(f"--guide {args.guide} holds {describe_model(guide.model_class)}, not a generator.")
        low, high = args.guidance_range
        if not math.isfinite(args.guidance) or not 0 <= low <= high:
            raise UsageError(f"--guidance must be a finite number and --guidance-range LOW HIGH need 0 ≤ LOW ≤ HIGH; "
                             f"got {args.guidance}, {low} {high}.")
        guidance = Autoguidance(guide.build(args.device), args.guidance, (low, high), args.guide_features)
    if args.steps is not None and not 1 <= args.steps <= (10_000 if karras else model.config.steps):
        raise UsageError(f"--steps must lie in 1..{10_000 if karras else model.config.steps}, got {args.steps}.")
    precision = args.precision
    if precision == "auto":
        choice = choose_precision("auto", args.device)
        precision = "bf16" if choice.precision == "bf16-mixed" else "fp32"
        print(f"  precision: {precision} ({choice.reason})")
    default_steps = default_sample_steps(model.config.objective, model.config.steps)
    spacing = args.spacing if args.spacing is not None else DEFAULT_SPACING
    generator = torch.Generator(args.device).manual_seed(args.seed)
    start, molecules = time.time(), []
    while len(molecules) < args.num:
        count = min(args.batch_size, args.num - len(molecules))
        molecules += sample_molecules(model, count, args.steps, count, generator, args.n_atoms, sampler, spacing,
                                      guidance, precision, churn=args.churn, sigma_max=args.sigma_max)
        print(f"\r  sampled {len(molecules)}/{args.num} molecules  ({time.time() - start:.0f} s)", end="", flush=True)
    seconds = (time.time() - start) / len(molecules)
    write_molecules(molecules, str(out))
    print(f"\nWrote {len(molecules)} molecules to {out} ({seconds:.3f} s per molecule).")
    if image is not None:
        draw_molecules(molecules[:50], str(image))
        print(f"Drew {min(50, len(molecules))} molecules into {image}")
    if args.metrics:
        training = _training_smiles() if args.novelty else None
        metrics = {**molecule_metrics(molecules, training), "seconds_per_molecule": seconds,
                   "steps": args.steps or default_steps, "sampler": sampler, "spacing": spacing,
                   **({"sigma_max": args.sigma_max, "churn": args.churn} if karras else {}),
                   **({"guide": args.guide, "guidance": args.guidance, "guidance_range": [low, high],
                       "guide_features": args.guide_features} if guidance is not None else {}),
                   "precision": precision, "seed": args.seed,
                   "checkpoint": args.checkpoint}
        for name in ("atom_stability", "molecule_stability", "validity", "uniqueness", "valid_and_unique", "novelty"):
            if name in metrics:
                print(f"  {name.replace('_', ' '):20s} {100 * metrics[name]:6.2f} %")
        out.with_suffix(".json").write_text(json.dumps(metrics, indent=2))
        print(f"Metrics written to {out.with_suffix('.json')}")
    return 0


def _training_smiles() -> set[str] | None:
    """EDM's QM9 training SMILES for the novelty metric, or ``None`` (with a note) without qm9pack."""
    import importlib.util

    if importlib.util.find_spec("qm9pack") is None:
        print("  (novelty needs QM9's training molecules: pip install 'ponita[qm9]')")
        return None
    from ponita.datasets import edm_training_smiles

    return edm_training_smiles()


def _evaluate_molecules(args: argparse.Namespace) -> int:
    from ponita.datasets import molecule_metrics, read_molecules, valence_errors

    if args.json is not None and (Path(args.json).is_dir() or not Path(args.json).resolve().parent.is_dir()):
        raise UsageError(f"--json {args.json} must be a file in an existing folder.")
    require_rdkit("EDM's validity metric")
    molecules = read_molecules(args.file)
    metrics = {"file": args.file, **molecule_metrics(molecules, _training_smiles() if args.novelty else None)}
    print(f"{metrics['num_molecules']} molecules in {args.file} (EDM's metrics; QM9 itself: 99.0 / 95.2 / 97.7 %)")
    for name in ("atom_stability", "molecule_stability", "validity", "uniqueness", "valid_and_unique", "novelty"):
        if name in metrics:
            print(f"  {name.replace('_', ' '):20s} {100 * metrics[name]:6.2f} %")
    if args.details:
        metrics["valence_errors"] = valence_errors(molecules)
        print("  unstable atoms, % of all atoms, by element and bond orders over (+) or under (−) the valence:")
        print("    " + ("  ".join(f"{key} {100 * share:.2f}" for key, share in metrics["valence_errors"].items())
                        or "none"))
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2))
        print(f"Metrics written to {args.json}")
    return 0
