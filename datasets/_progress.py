"""The default progress report of first-use data processing: a log line every tenth of the work."""

import logging
from collections.abc import Callable


def log_progress(logger: logging.Logger, unit: str) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that logs (INFO) at every tenth of ``total`` and at the end."""

    def progress(done: int, total: int) -> None:
        if done == total or done * 10 // total != (done - 1) * 10 // total:
            logger.info("%d/%d %s", done, total, unit)

    return progress
