"""`cyclegan package`: a trained model as a folder to pass around (weights, config.json, model card, samples)."""

from __future__ import annotations

NAME = "package"
HELP = "a model folder to share: model.safetensors, config.json, README.md model card"


def add_parser(sub):
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Write a self-describing model folder in the Hugging Face hub's layout: "
        "model.safetensors (the generators), config.json (what rebuilds them), README.md (a "
        "model card: method, data, steps, wall time, evaluation figures, licence, how to "
        "load) and samples.png. `cyclegan translate -c DIR`, `cyclegan serve -c DIR` and "
        "`cyclegan.load(DIR)` read it offline, without the run directory.",
    )
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run directory, or a .model/.state.safetensors file of one")
    p.add_argument("--out", "-o", required=True, help="the package folder to write (new, or an earlier package)")
    p.add_argument(
        "--license",
        default="other",
        help="licence of the weights for the card's metadata (a hub identifier: mit, apache-2.0, cc-by-4.0, "
        "other...; default other: they follow the training data's terms)",
    )
    p.add_argument("--name", default="", help="the model's title on its card (default: the run directory's name)")
    p.add_argument("--samples", type=int, default=4, help="test images per direction in samples.png (default 4)")
    p.add_argument(
        "--push",
        metavar="USER/NAME",
        help="also upload the folder to this hub repository (needs huggingface_hub and a hub login; "
        "never needed to load the folder)",
    )
    p.add_argument("--private", action="store_true", help="with --push: create the repository private")
    return p


def run(args) -> int:
    from ..errors import UserError
    from ..package import package_model, push

    if args.samples < 0:
        raise UserError(f"--samples {args.samples}: give 0 or more images per direction")
    out = package_model(args.run, args.out, license=args.license, name=args.name, sample_images=args.samples)
    print(f"wrote {out}: " + ", ".join(p.name for p in sorted(out.iterdir())))
    print(f"load it with: cyclegan translate -c {out} IMAGES --out DIR, or cyclegan.load({str(out)!r})")
    if args.push:
        print(f"pushed to {push(out, args.push, private=args.private)}")
    return 0
