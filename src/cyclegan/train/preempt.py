"""Stopping a run cleanly on a signal: Ctrl-C (SIGINT), and the preemption signals of clusters and containers.

SIGTERM is how SLURM, Kubernetes, spot instances and `docker stop` end a job (followed by SIGKILL after a grace
period); SIGUSR1 is what SLURM sends ahead of it with `sbatch --signal=USR1@SECONDS`. On any of them the loop
finishes the step in progress (or abandons an in-training evaluation, whose epoch is saved before it starts:
`StopSignals.abandoning`), saves a resume state and stops; the command then exits with PREEMPTED (75,
EX_TEMPFAIL of sysexits.h: "try again later") after SIGTERM/SIGUSR1, or 130 after Ctrl-C, so a job script can
tell a preemption that saved (requeue it) from a crash (1) or a kill without saving (137, 143). A second Ctrl-C
aborts at once (exit 130, nothing saved); a second SIGTERM or SIGUSR1 does not, since launchers repeat them
(torchrun forwards to its ranks the SIGTERM that SLURM also sent them; SLURM's SIGTERM follows its SIGUSR1).
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

PREEMPTED = 75  # exit status after a preemption signal, once the resume state is saved (docs/reliability.md)
INTERRUPTED = 130  # after Ctrl-C, once saved (128 + SIGINT, as shells report it)

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name))


class EvaluationAbandoned(BaseException):
    """The first stop signal inside `StopSignals.abandoning()`: the evaluation under way ends here. A BaseException,
    like KeyboardInterrupt, so that no `except Exception` in the evaluation's code turns it into an error."""


class StopSignals:
    """Catches SIGINT, SIGTERM and SIGUSR1 while a run trains (restored by `restore`).

    `requested` turns true on the first signal and `signal_name` names it; the loop polls `requested` at
    step boundaries (distributed: the ranks agree on it with one all-reduce, rank 0 writes the state).
    A second Ctrl-C raises KeyboardInterrupt: abort now, without saving; SIGTERM or SIGUSR1 again changes nothing."""

    def __init__(self):
        self.requested = False
        self.signal_name = ""
        self.cut_short = False  # the loader stopped mid-epoch because of the signal (see `batches`)
        self._abandon = False  # inside `abandoning()`: the first signal raises EvaluationAbandoned
        self._old = {}
        for sig in SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: the caller handles signals
                break

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.requested:
            if signum == signal.SIGINT:  # Ctrl-C again: the user wants out now
                raise KeyboardInterrupt
            # SIGTERM/SIGUSR1 again: a launcher passing the signal on (torchrun forwards the SIGTERM its ranks
            # got too), or SLURM's SIGTERM after its SIGUSR1 warning: the save under way goes on
            print(f"\n{name}: already stopping; the checkpoint is being saved", flush=True)
            return
        self.requested = True
        self.signal_name = name
        if self._abandon:
            self._abandon = False
            print(f"\n{name}: stopping; the evaluation under way runs again on resume (its epoch is saved)", flush=True)
            raise EvaluationAbandoned
        again = "Ctrl-C again to abort" if signum == signal.SIGINT else "Ctrl-C to abort"
        print(f"\n{name}: saving a checkpoint after this step ({again})", flush=True)

    @contextmanager
    def abandoning(self, enabled: bool = True):
        """Within it (when enabled), the first stop signal raises EvaluationAbandoned where the code is, instead of
        waiting for the next step: for an evaluation that can outlast a cluster's grace period (minutes on a CPU
        against SIGKILL after 30 s), entered only once the state before it is saved (train/loop.py)."""
        self._abandon = enabled
        try:
            yield
        finally:
            self._abandon = False

    @property
    def preempted(self) -> bool:
        """Stopped by a preemption signal (SIGTERM, SIGUSR1) rather than by Ctrl-C."""
        return self.requested and self.signal_name != "SIGINT"

    def batches(self, loader):
        """The loader's batches, ending early (with `cut_short` set) where a signal for the whole process group has
        ended the loader's worker processes too (Ctrl-C reaches the whole foreground group, and PyTorch's workers
        exit on it; the preemption signals they ignore, see `worker_init`): the batch that could not be fetched was
        never trained on, so the saved state resumes exactly."""
        it = iter(loader)
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except RuntimeError:  # "DataLoader worker (pid ...) exited unexpectedly"
                if not self.requested:
                    raise
                self.cut_short = True
                return
            yield batch

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


def exit_status(interrupted: bool, preempted: bool) -> int:
    """The command's exit status for a run that stopped on a signal (and saved), 0 otherwise."""
    if preempted:
        return PREEMPTED
    return INTERRUPTED if interrupted else 0


def worker_init(worker_id: int) -> None:
    """DataLoader workers ignore the preemption signals, SIGTERM and SIGUSR1, whose default action ends a process:
    SLURM sends them to every process of a job step (so does `pkill -f`), and a worker ended by one makes PyTorch
    raise "DataLoader worker ... is killed by signal" in the main process at whatever it is doing, before it can
    save. Only the main process acts on them; it ends the workers itself once the state is saved (and a worker
    whose main process has gone quits by itself: PyTorch's watchdog)."""
    for sig in SIGNALS:
        if sig != signal.SIGINT:  # Ctrl-C: PyTorch's workers exit quietly on it; `batches` handles that
            signal.signal(sig, signal.SIG_IGN)
