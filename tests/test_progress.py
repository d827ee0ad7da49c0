"""vaeas.progress: a job's log gets a readable line per twentieth of the run (issue 21, item 5)."""

import io
import re

import pytest

from vaeas.progress import EpochLines, clock, epoch_bar

LINE = re.compile(r"^train x: epoch (\d+)/(\d+), loss 1\.00, \d+\.\d\d s/epoch, elapsed \d+s, left \d+s$")


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (4.4, "4s"), (59.6, "1m00s"), (65, "1m05s"),
                                           (3725, "1h02m05s"), (36000, "10h00m00s")])
def test_clock_reads_as_hours_minutes_seconds(seconds, text):
    assert clock(seconds) == text


def epochs_written(total: int, initial: int = 0, lines: int = 20) -> list[int]:
    stream = io.StringIO()
    bar = EpochLines(range(initial, total), initial, total, "train x", lines=lines, stream=stream)
    for _ in bar:
        bar.set_postfix(loss="1.00")
    found = [LINE.match(line) for line in stream.getvalue().splitlines()]
    assert all(found), stream.getvalue()
    assert {int(m.group(2)) for m in found} <= {total}
    return [int(m.group(1)) for m in found]


def test_a_line_every_twentieth_of_the_run_and_after_the_last_epoch():
    assert epochs_written(600) == list(range(30, 601, 30))
    assert epochs_written(50) == [3 * k for k in range(1, 17)] + [50]      # ceil(50/20) = 3
    assert epochs_written(3) == [1, 2, 3]


def test_a_resumed_run_counts_from_where_it_resumed():
    assert epochs_written(600, initial=290) == list(range(300, 601, 30))
    assert epochs_written(600, initial=600) == []


def test_epoch_bar_picks_the_lines_for_a_log_and_tqdm_otherwise():
    assert isinstance(epoch_bar("lines", range(3), 0, 3, "x"), EpochLines)
    quiet = epoch_bar(False, range(3), 0, 3, "x")
    assert not isinstance(quiet, EpochLines) and quiet.disable
