"""The screenshot of `cyclegan serve` in docs/images/: a small model, the page in headless Chromium, a horse.

    PYTHONPATH=src python experiments/serve/screenshot.py --data ../shared/data/horse2zebra \
        --run runs/serve_h2z64 --out docs/images/serve.png

Trains (unless --run already holds a model) a small CycleGAN on horse2zebra at 64x64 (resnet_6blocks, ngf 16,
--steps steps, on the CPU), serves it, uploads the first horse of testA in Chromium and saves the page.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="horse2zebra folder (trainA, trainB, testA)")
    p.add_argument("--run", default="runs/serve_h2z64", help="run directory of the small model (trained if empty)")
    p.add_argument("--steps", type=int, default=200, help="training steps of the small model (default 200)")
    p.add_argument("--out", default="docs/images/serve.png", help="the screenshot")
    p.add_argument("--image", help="the photo to upload (default: the first of DATA/testA)")
    args = p.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
    from playwright.sync_api import sync_playwright

    from browser import chromium_executable
    from cyclegan.config import build_config
    from cyclegan.serve import Service, create_app, running
    from cyclegan.train import train

    run = Path(args.run)
    if not (run / "checkpoints" / "latest.model.safetensors").is_file():
        cfg = build_config(
            [],
            [],
            [
                f"data.root={args.data}",
                "train.device=cpu",
                "model.generator=resnet_6blocks",
                "model.ngf=16",
                "model.ndf=16",
                "data.load_size=72",
                "data.crop_size=64",
                f"train.max_steps={args.steps}",
                "train.sample_every=0",
                "train.progress=false",
                "train.log_every=20",
            ],
        )
        train(cfg, run)
    photo = Path(args.image) if args.image else sorted((Path(args.data) / "testA").glob("*.jpg"))[0]
    with running(create_app(Service(run, device="cpu"))) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_executable(), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 620})
        page.goto(url)
        page.set_input_files("#file", str(photo))
        page.wait_for_function("document.getElementById('output').naturalWidth > 0", timeout=120_000)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out} ({photo.name} translated by {run})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
