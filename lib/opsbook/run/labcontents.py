"""The contents manager of the JupyterLab `opsbook lab` starts: runbook templates open read-only, never saved over."""
from __future__ import annotations

from pathlib import Path

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web
from traitlets import Unicode


class TemplateGuard(AsyncLargeFileManager):
    """Jupyter's own file manager, except that a notebook inside `templates_dir` is shown not writable (Lab opens
    it read-only and its autosave skips it) and a save, rename, delete or checkpoint restore of one is refused
    (HTTP 403) with what to do instead. Opening and running a template stays possible."""

    templates_dir = Unicode("", config=True, help="The runbook templates' folder (opsbook's runbooks/).")

    def _inside(self, path: str) -> Path | None:
        """The API path `path` relative to the templates folder when it lies inside it (existing or not)."""
        if not self.templates_dir:
            return None
        try:
            os_path = Path(self._get_os_path(path.strip("/"))).resolve()
        except web.HTTPError:  # outside the server's root: Jupyter refuses it anyway
            return None
        root = Path(self.templates_dir).resolve()
        return os_path.relative_to(root) if os_path.is_relative_to(root) else None

    def is_template(self, path: str) -> bool:
        """Whether `path` names a notebook inside the templates folder: a template, or a new notebook there."""
        return path.rstrip("/").endswith(".ipynb") and self._inside(path) is not None

    def _refused(self, path: str, verb: str) -> web.HTTPError:
        relative = self._inside(path) or Path(path)
        shown = f"{Path(self.templates_dir).name}/{relative.as_posix()}"
        if (Path(self.templates_dir) / relative).is_file():
            why = (f"{shown} is a template (not {verb} from `opsbook lab`): open a working copy with "
                   f"`opsbook lab {relative.stem} --target T`")
        else:
            why = f"{Path(self.templates_dir).name}/ holds only the runbook templates: {shown} is not {verb} there"
        return web.HTTPError(403, why)  # the JSON answer's "message", which Lab shows in its error dialog

    async def get(self, path, content=True, type=None, format=None, require_hash=False):  # noqa: A002
        model = await super().get(path, content=content, type=type, format=format, require_hash=require_hash)
        listed = model["content"] if model["type"] == "directory" and model.get("content") else []
        for item in (model, *listed):
            if self.is_template(item["path"]):
                item["writable"] = False
        return model

    async def save(self, model, path=""):
        if self.is_template(path):
            raise self._refused(path, "saved")
        return await super().save(model, path)

    async def rename_file(self, old_path, new_path):
        for p in (old_path, new_path):
            if self.is_template(p):
                raise self._refused(p, "renamed")
        return await super().rename_file(old_path, new_path)

    async def delete_file(self, path):
        if self.is_template(path):
            raise self._refused(path, "deleted")
        return await super().delete_file(path)

    async def restore_checkpoint(self, checkpoint_id, path):
        if self.is_template(path):
            raise self._refused(path, "restored")
        return await super().restore_checkpoint(checkpoint_id, path)

    async def copy(self, from_path, to_path=None):
        """Jupyter copies a folder on disk, past `save`: a folder is not copied into the templates folder."""
        destination = to_path if to_path is not None else from_path.strip("/").rpartition("/")[0]
        if self._inside(destination) is not None and await self.dir_exists(from_path):
            raise self._refused(f"{destination.strip('/')}/{from_path.strip('/').rpartition('/')[2]}", "copied")
        return await super().copy(from_path, to_path)
