"""Inference: translate images, files and folders at their own size, with any trained checkpoint.

translator.py builds a `Translator` from a checkpoint (never from training code); files.py reads inputs,
writes outputs (never over an input, never two inputs to one file) and lists them; gallery.py writes the page.
"""

from .files import check_parents, expand_inputs, parse_size, save_image, translate_files
from .gallery import write_gallery
from .translator import Translator, load_translator, seeded

__all__ = [
    "Translator",
    "check_parents",
    "expand_inputs",
    "load_translator",
    "parse_size",
    "save_image",
    "seeded",
    "translate_files",
    "write_gallery",
]
