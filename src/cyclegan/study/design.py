"""Seeded trial sequences of the real-vs-fake study (pure: no files).

As in the paper (CycleGAN Sec. 5.1.1, the protocol of pix2pix Sec. 4.2): a session tests one method; each
trial shows a real image and a translation side by side, in random order, for one second, then asks which
was real; the first 10 trials are practice with feedback, the next 40 are scored without. Participant p
(1-based) tests method `methods[(p - 1) % len(methods)]`, so consecutive numbers spread participants evenly
over methods, and its sequence is drawn from `numpy.random.default_rng([seed, p])`: the same participant
number always sees the same trials, and the scorer can check an answer file against it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SIDES = ("left", "right")


@dataclass(frozen=True)
class Trial:
    """One trial: which images, on which side the real one is, and whether it is practice."""

    index: int  # 0-based position in the session
    practice: bool  # feedback is given, and the answer is not scored
    method: str
    real: str  # image id (a file name inside the study folder's images/)
    fake: str
    real_side: str  # "left" or "right"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StudyDesign:
    """What a study shows: per method, its (real, translation) pairs; `real` None draws a real image at random.

    Translations are paired with the real image of the same file name when the real folder has one (e.g.
    facades labels->photo: the real photo of the label map that was translated); otherwise (unpaired test
    sets such as horse->zebra) each trial draws its real image from all real images.
    """

    methods: tuple[str, ...]
    pairs: dict[str, tuple[tuple[str | None, str], ...]]  # method -> ((real id or None, fake id), ...)
    reals: tuple[str, ...]  # every real image id
    practice: int = 10
    trials: int = 40
    seed: int = 0

    def method_of(self, participant: int) -> str:
        """The one method participant `participant` (1-based) tests."""
        if participant < 1:
            raise ValueError(f"participant numbers start at 1, got {participant}")
        return self.methods[(participant - 1) % len(self.methods)]


def participant_sequence(design: StudyDesign, participant: int) -> list[Trial]:
    """The practice + test trials of one participant: translations in a seeded random order (each used once
    before any repeats), the real image's side drawn per trial."""
    method = design.method_of(participant)
    pairs = design.pairs[method]
    rng = np.random.default_rng([design.seed, participant])
    n = design.practice + design.trials
    order: list[int] = []
    while len(order) < n:  # fewer translations than trials: reshuffle and go round again
        order += rng.permutation(len(pairs)).tolist()
    sides = rng.integers(0, 2, n)
    trials = []
    for i, k in enumerate(order[:n]):
        real, fake = pairs[k]
        if real is None:
            real = design.reals[int(rng.integers(len(design.reals)))]
        trials.append(Trial(i, i < design.practice, method, real, fake, SIDES[int(sides[i])]))
    return trials


__all__ = ["SIDES", "StudyDesign", "Trial", "participant_sequence"]
