"""Kernel clients that count a kernel as ready as soon as it has answered on both channels.

jupyter_client's `wait_for_ready` ends with 0.2 s of waiting for silence on IOPub; a run creates two clients (the
warm-up's and nbclient's), so every run paid 0.4 s of nothing on its critical path. Here the wait ends once the
kernel_info reply has come on the shell channel and a message of that same request on IOPub (which proves the
subscription is live, the reason for the original wait). Later messages of that request are left for whoever
reads next; every reader there filters by its own request id.
"""
from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.utils import run_sync
from jupyter_core.utils import ensure_async

STEP_S = 1.0  # resend kernel_info after this long without both answers (IOPub may not be connected yet)
POLL_S = 0.02


async def _wait_for_ready(self, timeout: float | None = None) -> None:
    deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
    while True:
        msg_id = self.kernel_info()
        replied = heard = False
        step_end = min(time.monotonic() + STEP_S, deadline)
        while not (replied and heard) and time.monotonic() < step_end:
            if not replied:
                try:
                    msg = await ensure_async(self.shell_channel.get_msg(timeout=POLL_S))
                except Empty:
                    pass
                else:
                    if msg["msg_type"] == "kernel_info_reply" and msg["parent_header"].get("msg_id") == msg_id:
                        self._handle_kernel_info_reply(msg)
                        replied = True
            if not heard:
                try:
                    msg = await ensure_async(self.iopub_channel.get_msg(timeout=POLL_S))
                except Empty:
                    pass
                else:
                    heard = msg["parent_header"].get("msg_id") == msg_id
        if replied and heard:
            return
        if not await self._async_is_alive():
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() >= deadline:
            raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


class QuickAsyncClient(AsyncKernelClient):
    wait_for_ready = _wait_for_ready


class QuickBlockingClient(BlockingKernelClient):
    wait_for_ready = run_sync(_wait_for_ready)
