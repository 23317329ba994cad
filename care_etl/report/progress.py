"""Progress bars for the long steps of `care-etl run` and `generate`, on stderr.

Shown only when stderr is a terminal or the user asks (--progress), so logs, pipes and CI
stay clean. Library code reports through plain callbacks (`done, total` or a message) and
never imports tqdm itself; this module turns the callbacks into bars.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def wanted(flag: bool) -> bool:
    """Bars when asked for, or when a person is watching stderr."""
    return flag or sys.stderr.isatty()


class Bars:
    """One tqdm bar per named step, created on its first report and closed when done."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bars: dict[str, Any] = {}

    def counter(self, step: str, unit: str) -> Callable[[int, int], None]:
        """A `done, total` callback drawing the step's bar (a no-op when bars are off)."""

        def report(done: int, total: int) -> None:
            if not self.enabled:
                return
            bar = self._bars.get(step)
            if bar is None:
                from tqdm import tqdm

                bar = self._bars[step] = tqdm(
                    total=total, desc=step, unit=unit, file=sys.stderr, leave=True
                )
            bar.total = total
            bar.update(done - bar.n)
            if done >= total:
                bar.close()

        return report

    def stages(self, step: str, total: int) -> Callable[[str], None]:
        """A message callback that advances a bar of `total` stages, naming the current one."""
        done = 0
        count = self.counter(step, "stage")

        def report(message: str) -> None:
            nonlocal done
            done = min(done + 1, total)
            count(done, total)
            bar = self._bars.get(step)
            if bar is not None and done < total:
                bar.set_postfix_str(message.split(":")[0])  # the stage just finished

        return report

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


@contextmanager
def bars(enabled: bool) -> Iterator[Bars]:
    progress = Bars(enabled)
    try:
        yield progress
    finally:
        progress.close()
