"""Progress bars redirected to a log file stay short."""

import time

from cyclegan.progress import LOG_INTERVAL_S, progress_bar


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


def test_slow_redirected_bar_is_not_redrawn_by_the_monitor_thread(capsys):
    # at a few seconds per step tqdm's monitor thread forces a redraw every `maxinterval` (10 s by
    # default), which a log then shows every 10-15 s; both intervals must be the log interval
    bar = progress_bar(total=10)
    assert bar.mininterval == bar.maxinterval == LOG_INTERVAL_S
    bar.close()
