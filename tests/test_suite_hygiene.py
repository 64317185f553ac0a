"""The test suite's own behaviour on the machine that runs it (conftest.py)."""

import subprocess
import sys
from pathlib import Path


def test_processes_started_by_the_tests_keep_their_temporary_files_under_pytests_folder(tmp_path_factory):
    """conftest's TMPDIR: a child process's temporary folder is pytest's, so nothing the suite runs piles up in /tmp."""
    child = subprocess.run(
        [sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(child.stdout.strip()).is_relative_to(tmp_path_factory.getbasetemp())
