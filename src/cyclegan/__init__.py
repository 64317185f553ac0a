"""cyclegan: unpaired image-to-image translation (Zhu, Park, Isola, Efros, ICCV 2017) in PyTorch.

`cyclegan.load(PATH)` (cyclegan.api) and `cyclegan.train(cfg, run_dir)` (cyclegan.train) are imported on
first use, so `import cyclegan` stays cheap (no torch).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "load":
        from .api import load

        return load
    if name == "train":  # the subpackage; calling it trains (cyclegan.train.train)
        import importlib

        return importlib.import_module(".train", __name__)
    raise AttributeError(f"module 'cyclegan' has no attribute {name!r}")
