"""A progress bar with the rate and the estimated time left, for batch runs on stderr.

On a terminal the bar is redrawn in place after every study; otherwise (a log file) a line is
written at most every `interval` seconds, and at the end.
"""

import sys
import time

WIDTH = 30


class Progress:
    def __init__(self, total, done, stream=None, enabled=True, interval=10.0):
        self.total, self.done, self.failed = total, done, 0
        self.resumed = done  # done before this run: not part of the rate
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.terminal = self.stream.isatty()
        self.started = self.last_drawn = time.monotonic()

    def advance(self, failed=False):
        self.done += 1
        self.failed += 1 if failed else 0
        self.draw()

    def draw(self, final=False):
        now = time.monotonic()
        if not self.enabled or (not self.terminal and not final
                                and now - self.last_drawn < self.interval):
            return
        self.last_drawn = now
        line = self.line(now)
        self.stream.write(f"\r{line}\x1b[K" if self.terminal else line + "\n")
        if final and self.terminal:
            self.stream.write("\n")
        self.stream.flush()

    def line(self, now):
        filled = WIDTH * self.done // self.total if self.total else WIDTH
        bar = "#" * filled + "-" * (WIDTH - filled)
        text = f"[{bar}] {self.done}/{self.total} studies"
        if self.failed:
            text += f" ({self.failed} failed)"
        processed = self.done - self.resumed
        if processed:
            seconds = (now - self.started) / processed
            text += f", {seconds:.2f} s/study, ETA {_clock(seconds * (self.total - self.done))}"
        return text


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
