"""Starting and stopping a `switchboard media` process (what `serve` uses as its embedded default).

`spawn_media()` runs `sys.executable -m switchboard.cli media ...`, waits for its one stdout line
`switchboard-media: listening control=HOST:PORT` and returns (process, host, port); if the process
dies or stays silent past the timeout it raises MediaStartError with what it wrote to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys

LISTENING = re.compile(rb"^switchboard-media: listening control=(.+):(\d+)\s*$")


class MediaStartError(RuntimeError):
    pass


async def spawn_media(
    listen: str = "127.0.0.1:0",
    rtp_ports: str = "10000-20000",
    extra_args: list[str] | tuple[str, ...] = (),
    timeout: float = 10.0,
) -> tuple[asyncio.subprocess.Process, str, int]:
    args = [sys.executable, "-m", "switchboard.cli", "media", "--listen", listen, "--rtp-ports", rtp_ports, *extra_args]
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    except TimeoutError:
        await stop(proc)
        raise MediaStartError(f"switchboard media did not report its control port within {timeout} s") from None
    m = LISTENING.match(line)
    if not m:
        await stop(proc)
        err = b""
        with contextlib.suppress(Exception):
            err = await asyncio.wait_for(proc.stderr.read(), 2)
        raise MediaStartError(
            f"switchboard media failed to start (exit status {proc.returncode}): "
            f"{(line + err).decode(errors='replace').strip()[-2000:]}"
        )
    # keep reading stderr so that the child never blocks on a full pipe
    proc._switchboard_drain = asyncio.ensure_future(_drain(proc.stderr))  # type: ignore[attr-defined]
    return proc, m.group(1).decode(), int(m.group(2))


async def _drain(stream: asyncio.StreamReader) -> None:
    """Pass the child's log lines on to our stderr (and never let its pipe fill up)."""
    while chunk := await stream.read(65536):
        with contextlib.suppress(Exception):
            sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()


async def stop(proc: asyncio.subprocess.Process, timeout: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after `timeout`; the exit status."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    drain = getattr(proc, "_switchboard_drain", None)
    if drain is not None:
        drain.cancel()
    return proc.returncode
