"""A trainee costs one kernel: the pool policy of a trainee's server
(:class:`xmailnb.classroom.singleuser.TraineeKernelManager`), seen from
outside.  Voilà runs as a process with the class's kernel manager
configured the public way (``VoilaConfiguration.multi_kernel_manager_class``,
as ``xmailnb.classroom.singleuser`` configures it), on a one-cell notebook;
the kernels are counted as processes."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from helpers import free_port
from xmailnb.classroom.singleuser import TraineeKernelManager

pytestmark = [pytest.mark.slow]

START = 120.0  # a loaded 2-core machine starts a kernel in a few seconds, sometimes far more
MANAGER = "xmailnb.classroom.singleuser.TraineeKernelManager"


class Server:
    def __init__(self, tmp: Path, kernel: str = "python3", *args: str) -> None:
        self.port = free_port()
        notebook = tmp / "page.ipynb"
        notebook.write_text(json.dumps({
            "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                       "source": ["print('trainee' + '-page')"]}],
            "metadata": {"kernelspec": {"display_name": kernel, "language": "python", "name": kernel}},
            "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
        env = {**os.environ, "JUPYTER_PATH": os.pathsep.join(filter(None, [str(tmp / "share"),
                                                                          os.environ.get("JUPYTER_PATH")]))}
        self.log = open(tmp / "voila.log", "w+", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={self.port}",
             "--Voila.ip=127.0.0.1", "--preheat_kernel=True", "--pool_size=1",
             f"--VoilaConfiguration.multi_kernel_manager_class={MANAGER}",
             "--TraineeKernelManager.check_seconds=1", "--TraineeKernelManager.retry_seconds=1",
             # the beacon's XSRF cookie is the page's business (singleuser.DashboardHandler)
             "--Voila.tornado_settings=disable_check_xsrf=True", *args],
            cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def kernels(self) -> dict[int, str]:
        """Kernel processes of this server: pid -> kernel id."""
        found = {}
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return {}
        for child in children:
            try:
                line = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "kernel-" in line and ".json" in line:
                found[child.pid] = line.split("kernel-", 1)[1].split(".json", 1)[0]
        return found

    def wait(self, predicate, what: str, timeout: float = START) -> dict[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kernels = self.kernels()
            if predicate(kernels):
                return kernels
            assert self.proc.poll() is None, self.said()
            time.sleep(0.5)
        pytest.fail(f"{what}: {self.kernels()}\n{self.said()}")

    def preheated(self, times: int = 1) -> dict[int, str]:
        """Wait until Voilà's pool has been filled *times* times (the
        preheated kernel started and its page rendered): a page asked for
        before that is not given the pool's kernel but one of its own."""
        deadline = time.monotonic() + START
        while self.said().count("is filled with 1 kernel") < times:
            assert time.monotonic() < deadline, self.said()
            assert self.proc.poll() is None, self.said()
            time.sleep(0.5)
        return self.kernels()

    def said(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8")

    def page(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=START) as resp:
            return resp.read().decode("utf-8")

    def leave(self, kernel_id: str) -> None:
        """What the page's beacon does when the trainee leaves it."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/voila/api/shutdown/{kernel_id}",
                                         method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert resp.status == 204

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.log.close()


@pytest.fixture
def server(tmp_path):
    made: list[Server] = []

    def make(*args: str, kernel: str = "python3") -> Server:
        made.append(Server(tmp_path, kernel, *args))
        return made[-1]

    yield make
    for s in made:
        if s.proc.poll() is None:
            os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait()
        if not s.log.closed:
            s.log.close()


def _wait_for_page(s: Server) -> str:
    deadline = time.monotonic() + START
    while True:
        try:
            return s.page()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_an_open_page_holds_the_only_kernel_and_leaving_it_preheats_the_next(server):
    s = server()
    s.wait(lambda k: len(k) == 1, "the preheated kernel")
    preheated = s.preheated()
    page = _wait_for_page(s)
    assert "trainee-page" in page
    (kernel_id,) = preheated.values()
    assert kernel_id in page  # the page got the preheated kernel
    # Voilà alone would start the next pool kernel a second after the page
    # took this one: a trainee would cost two kernels while working.
    time.sleep(8)
    assert s.kernels() == preheated, s.said()

    s.leave(kernel_id)
    fresh = s.wait(lambda k: len(k) == 1 and kernel_id not in k.values(), "a new kernel once the page left",
                   timeout=60)
    assert s.preheated(2) == fresh
    time.sleep(4)
    assert s.kernels() == fresh  # one, not one per refill
    # The next page opens on the new preheated kernel.
    assert next(iter(fresh.values())) in _wait_for_page(s)

    assert s.stop() == 0
    assert s.kernels() == {}


def test_a_kernel_that_failed_to_start_is_tried_again_and_the_page_gets_it(server, tmp_path):
    # A kernel whose program is not there yet: starting it fails, as one
    # does on a machine too busy to start it.
    program = tmp_path / "kernel.sh"
    spec = tmp_path / "share" / "kernels" / "flaky"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(program), "-f", "{connection_file}"], "display_name": "flaky", "language": "python"}))
    s = server(kernel="flaky")
    deadline = time.monotonic() + START
    while "did not start" not in s.said():
        assert time.monotonic() < deadline, s.said()
        assert s.proc.poll() is None, s.said()
        time.sleep(0.5)
    program.write_text(f"#!/bin/sh\nexec {sys.executable} -m ipykernel_launcher \"$@\"\n", encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    s.wait(lambda k: len(k) == 1, "the kernel, tried again")
    kernels = s.preheated()
    page = _wait_for_page(s)
    assert "trainee-page" in page
    assert next(iter(kernels.values())) in page
    assert s.stop() == 0


def test_a_start_that_failed_does_not_take_the_next_ones_connection_file(tmp_path, caplog):
    # Every try of a kernel start runs under the same kernel id, so writes
    # the same connection file.  The manager of a failed try removed that
    # file whenever it was garbage-collected: if that came after the next
    # try wrote it and before its kernel read it, the kernel chose ports of
    # its own and never answered, and the page stopped half-way (CI saw it).
    # Here the collection comes at that worst moment, every time.
    program = tmp_path / "kernel.sh"
    spec = tmp_path / "kernels" / "flaky"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(program), "-f", "{connection_file}"], "display_name": "flaky", "language": "python"}))
    connections = tmp_path / "connections"
    connections.mkdir()
    caplog.set_level(logging.WARNING, logger="xmailnb.classroom.singleuser")

    async def scenario() -> None:
        manager = TraineeKernelManager(root_dir=str(tmp_path), connection_dir=str(connections), retry_seconds=0.5,
                                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]))
        starting = asyncio.create_task(manager.start_kernel(kernel_name="flaky"))
        try:
            while not starting.done() and "did not start" not in caplog.text:
                await asyncio.sleep(0.05)
            assert list(connections.iterdir()) == []  # the failed try left nothing behind
            program.write_text(f"#!/bin/sh\nexec {sys.executable} -m ipykernel_launcher \"$@\"\n", encoding="utf-8")
            program.chmod(program.stat().st_mode | stat.S_IXUSR)
            kernel_id = await asyncio.wait_for(starting, START)
            gc.collect()
            assert [p.name for p in connections.iterdir()] == [f"kernel-{kernel_id}.json"]
            client = manager.get_kernel(kernel_id).client()
            client.start_channels()
            try:
                await client.wait_for_ready(timeout=START)  # the kernel answers
            finally:
                client.stop_channels()
        finally:
            manager.stopping = True
            await manager.shutdown_all(now=True)

    asyncio.run(scenario())
