"""The paper's real-vs-fake perceptual study (CycleGAN Sec. 5.1.1, after pix2pix Sec. 4.2), offline.

`make_study` writes a self-contained folder (index.html, its script, styles and images; no server, no
network) from a folder of real images and folders of translations; participants open it in a browser and
the page downloads their answers as JSON. `score_answers` turns answer files into the paper's table: per
method, the share of test trials in which the translation was taken for the real image, with a confidence
interval across participants.

`design` (the seeded trial sequences) is pure; `make` writes files; `score` reads answers.
"""

from .design import StudyDesign, Trial, participant_sequence
from .make import make_study
from .score import MethodScore, read_answers, score_answers, score_table

__all__ = [
    "MethodScore",
    "StudyDesign",
    "Trial",
    "make_study",
    "participant_sequence",
    "read_answers",
    "score_answers",
    "score_table",
]
