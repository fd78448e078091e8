"""JupyterLab in a page driven by playwright: when the open notebook's kernel can take cells (a Lab started with
`LabApp.expose_app_in_browser`, so that window.jupyterapp exists)."""
from __future__ import annotations

# The notebook's kernel connected, its info in, idle, and no dialog over the page: cells sent to a kernel connection
# Lab is still replacing are lost (seen: Run All ran its first cell only).
KERNEL_READY = """async () => {
  const ctx = window.jupyterapp?.shell.currentWidget?.sessionContext;
  if (!ctx) return false;
  await ctx.ready;
  const k = ctx.session?.kernel;
  if (!k) return false;
  await k.info;
  return k.connectionStatus === 'connected' && k.status === 'idle' && !document.querySelector('.jp-Dialog');
}"""


def idle(page) -> None:
    """Wait until the open notebook's kernel can take cells."""
    page.wait_for_function(KERNEL_READY, polling=100)
