"""Progress bars redirected to a log file stay short."""

import time

from cyclegan.progress import progress_bar


def test_redirected_bar_is_sparse(capsys):
    for _ in progress_bar(range(300), desc="work"):  # pytest captures stderr: not a terminal
        time.sleep(0.001)
    err = capsys.readouterr().err
    assert "300/300" in err
    assert err.count("\r") <= 3  # the first draw and the final one, not one per update


def test_explicit_interval_wins(capsys):
    for _ in progress_bar(range(50), mininterval=0, miniters=1):
        pass
    assert capsys.readouterr().err.count("\r") >= 50
