"""Progress of long steps: "step i of N", elapsed time and a live tail of the step's log.

On a terminal a small live panel is redrawn in place; when piped (or with ``plain=True``) every
log line is printed once with a ``[i/N name +12.3s]`` prefix, so logs stay readable without colour.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live


class StepProgress:
    def __init__(self, total: int, *, stream: TextIO | None = None, plain: bool | None = None,
                 tail: int = 6) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.plain = (not self.stream.isatty()) if plain is None else plain
        self.tail: deque[str] = deque(maxlen=tail)
        self.index = 0
        self.name = ""
        self.t0 = 0.0
        self._live: Live | None = None
        self._console: Console | None = None

    def _elapsed(self) -> float:
        return time.monotonic() - self.t0

    def _render(self):
        from rich.text import Text

        text = Text()
        text.append(f"step {self.index} of {self.total}: {self.name}  {self._elapsed():.1f} s\n", style="bold")
        width = max(20, self._console.width - 5) if self._console else 200
        for line in self.tail:
            text.append(f"  | {line[:width]}\n", style="dim")
        return text

    def start(self, name: str) -> None:
        self.index += 1
        self.name = name
        self.t0 = time.monotonic()
        self.tail.clear()
        if self.plain:
            print(f"[{self.index}/{self.total}] {name} ...", file=self.stream, flush=True)
        else:
            from rich.console import Console
            from rich.live import Live

            self._console = self._console or Console(file=self.stream)
            self._live = Live(self._render(), console=self._console, refresh_per_second=8,
                              transient=True, get_renderable=self._render)
            self._live.start()

    def line(self, text: str) -> None:
        text = text.rstrip("\n")
        if not text.strip():
            return
        self.tail.append(text)
        if self.plain:
            print(f"[{self.index}/{self.total} {self.name} +{self._elapsed():.1f}s] {text}",
                  file=self.stream, flush=True)

    def finish(self, result: str, detail: str = "") -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        extra = f" ({detail})" if detail else ""
        print(f"[{self.index}/{self.total}] {self.name} {result} in {self._elapsed():.1f} s{extra}",
              file=self.stream, flush=True)
