"""The README's two first commands: the second is the test command `.ci/run` runs, word for word."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_here_commands() -> list[str]:
    block = re.search(r"## Start here.*?```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_the_readme_starts_with_setup_and_demo_then_setup_and_tests():
    demo, tests = start_here_commands()
    assert demo.startswith("python3.11 -m venv .venv && ") and "cyclegan demo" in demo
    assert tests.startswith("python3.11 -m venv .venv && ") and "pip install -e '.[test]'" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    pytest_line = next(line for line in ci if " -m pytest" in line)
    readme_pytest = start_here_commands()[1].split(" && ")[-1]
    assert pytest_line == readme_pytest
    assert "python3.11 -m venv .venv && .venv/bin/pip install -e '.[test]'" in ci
