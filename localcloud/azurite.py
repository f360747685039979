"""Azurite (the storage emulator from npm): Blob and Queue on free loopback ports, in memory.

The storage half of a local Azure for a Functions app: the host's `AzureWebJobsStorage` account
(queues, blob leases) next to the local cloud's Entra, Graph and Key Vault. Both services start on
port 0 and report the port they took, so there is no race between choosing a port and binding it.

Where Azurite is installed is the caller's business: `AZURITE_BIN` (a folder holding `azurite-blob`
and `azurite-queue`, e.g. a project's `node_modules/.bin`), then the folders the caller passes, then
`PATH`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

BIN_ENV = "AZURITE_BIN"
ACCOUNT = "devstoreaccount1"
# The host's storage setting (mixed case is its real name).
STORAGE_SETTING = "AzureWebJobsStorage"
# Azurite's fixed, publicly documented development key: not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
FLAGS = ("--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent", "--loose")
START_TIMEOUT = 30.0
# "successfully listening at http://127.0.0.1:PORT" (azurite) / "successfully listens on ..." (azurite-blob)
_LISTENING = re.compile(r"success\w*\s+listen\w*\s+(?:at|on)\s+https?://[^:\s]+:(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Azurite:
    blob_port: int
    queue_port: int

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
        )


class _Service:
    """One Azurite service process and the port it reported."""

    def __init__(self, executable: Path, service: str, workspace: Path) -> None:
        self.name = service
        self.output: list[str] = []
        self._port: int | None = None
        self._ready = threading.Event()
        args = [
            str(executable),
            f"--{service}Host",
            "127.0.0.1",
            f"--{service}Port",
            "0",
            # In-memory extents default to half the machine's memory; a test needs a few MB.
            "--extentMemoryLimit",
            "64",
            *FLAGS,
        ]
        self.process = subprocess.Popen(  # noqa: S603 - the Azurite executable found below, fixed arguments
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=workspace,
        )
        # Drain the output for the whole session: a full pipe would block Azurite.
        self._reader = threading.Thread(target=self._read, name=f"azurite-{service}-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip())
            match = _LISTENING.search(line)
            if match and self._port is None:
                self._port = int(match.group(1))
                self._ready.set()
        self._ready.set()  # the process ended: wake the waiter, which then reports the output

    def wait_port(self, deadline: float) -> int:
        self._ready.wait(max(0.0, deadline - time.monotonic()))
        if self._port is None:
            raise RuntimeError(
                f"Azurite {self.name} did not report a listening port "
                f"(exit code {self.process.poll()}); its output:\n" + "\n".join(self.output[-20:])
            )
        return self._port

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _wait_accepting(port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Azurite did not accept connections on 127.0.0.1:{port}") from None
            time.sleep(0.05)


class AzuriteMissing(RuntimeError):
    """Azurite or Node.js is not installed; the message says what to run."""


def executable(name: str, search: Iterable[Path | str] = ()) -> Path:
    """`name` from `$AZURITE_BIN`, then the `search` folders, then `PATH`."""
    folders = [Path(p) for p in (os.environ.get(BIN_ENV), *search) if p]
    for folder in folders:
        if (folder / name).exists():
            path = folder / name
            break
    else:
        found = shutil.which(name)
        if found is None:
            looked = ", ".join(str(f) for f in folders) or "no folder given"
            raise AzuriteMissing(
                f"Azurite's {name} was not found (looked in {looked}, then PATH): install it with "
                f"`npm install azurite` and set {BIN_ENV} to its node_modules/.bin, or put it on PATH."
            )
        path = Path(found)
    if shutil.which("node") is None:
        raise AzuriteMissing("Azurite needs Node.js on PATH; install node/npm.")
    return path


@contextlib.contextmanager
def running_azurite(*, export: bool = True, search: Iterable[Path | str] = ()) -> Iterator[Azurite]:
    """Blob and Queue emulators for the `with` block; with `export`, `AzureWebJobsStorage` points at them.

    `search`: folders to look for the Azurite executables in (after `$AZURITE_BIN`, before `PATH`)."""
    folders = list(search)
    blob_bin, queue_bin = executable("azurite-blob", folders), executable("azurite-queue", folders)
    workspace = Path(tempfile.mkdtemp(prefix="azurite-"))
    services = [_Service(blob_bin, "blob", workspace), _Service(queue_bin, "queue", workspace)]
    try:
        deadline = time.monotonic() + START_TIMEOUT
        blob_port, queue_port = (service.wait_port(deadline) for service in services)
        for port in (blob_port, queue_port):
            _wait_accepting(port, deadline)
        emulator = Azurite(blob_port, queue_port)
        saved = os.environ.get(STORAGE_SETTING)
        if export:
            os.environ[STORAGE_SETTING] = emulator.connection_string
        try:
            yield emulator
        finally:
            if export:
                if saved is None:
                    os.environ.pop(STORAGE_SETTING, None)
                else:
                    os.environ[STORAGE_SETTING] = saved
    finally:
        for service in services:
            service.stop()
        shutil.rmtree(workspace, ignore_errors=True)
