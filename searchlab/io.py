"""File and device plumbing every room shares: atomic writes, state-dict reading, device names.

Atomic writes go to a temporary file beside the target, are fsynced and renamed over it, so a crash or
a full disk leaves the last good file in place (never half a file); a full disk is one `StorageFull`
line naming the file. State dicts are read without unpickling code: safetensors, or a torch file
loaded with `weights_only=True`; every failure is one `ConfigError` line that says what the file should
be. JSON that searchlab reads is parsed by `parse_json`, which bounds its nesting depth.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from searchlab.errors import ConfigError, StorageError

if TYPE_CHECKING:  # torch is imported where it is used: commands that never touch a tensor start without it
    import torch

SAVE_HINT = "save one with torch.save(model.state_dict(), PATH)"
MAX_JSON_DEPTH = 64  # the deepest JSON searchlab writes (a genome inside a snapshot) nests under 10 levels
MAX_JSON_BYTES = 64 * 2**20  # the largest JSON file searchlab writes (a predictor's metadata) is well under 1 MB
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?')  # brackets inside strings do not nest


def parse_json(text: str | bytes) -> Any:
    """JSON text (str, or UTF-8 bytes) decoded; anything else, including nesting deeper than
    MAX_JSON_DEPTH, is a ValueError whose message says what is wrong (RecursionError never escapes)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")  # UnicodeDecodeError is a ValueError
    if too_deep(text):
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None


def too_deep(text: str) -> bool:
    """Whether JSON text nests brackets deeper than MAX_JSON_DEPTH, found without parsing (so without
    recursion): text that opens no more brackets than that cannot."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    import numpy as np

    code = np.frombuffer(_STRINGS.sub("", text).encode("utf-8", "replace"), dtype=np.uint8)
    step = np.zeros(256, dtype=np.int64)
    step[[ord("["), ord("{")]], step[[ord("]"), ord("}")]] = 1, -1
    return int(step[code].cumsum().max(initial=0)) > MAX_JSON_DEPTH


def read_json(path: str | Path, what: str, hint: str) -> Any:
    """A JSON file searchlab did not necessarily write: size and depth bounded; every failure is one
    ConfigError line, "`what` PATH ... ; `hint`"."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ConfigError(f"{what} {path} is {size / 2**20:.0f} MB, more than any JSON searchlab reads "
                              f"({MAX_JSON_BYTES // 2**20} MB); {hint}")
        return parse_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path} ({exc.strerror or exc}); {hint}") from None
    except ValueError as exc:
        raise ConfigError(f"{what} {path} is not valid JSON ({str(exc)[:120]}); {hint}") from None


STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file in `path`'s folder, fsync it and rename it onto `path`.

    A full disk (or read-only storage, a permission, a file-size limit) is one StorageError line that
    names the file and says what was kept: the previous file as it was, or nothing written."""
    path = Path(path)
    existed = path.exists()
    tmp = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        code = _storage_errno(exc)
        if code is None:
            raise
        kept = f"the previous {path.name} is kept as it was" if existed else f"no {path.name} was written"
        error = StorageError(f"cannot write {path}: {os.strerror(code)}; {kept}; free space (or make it writable) "
                             f"and try again")
        error.errno = code
        raise error from None
    return path


def _storage_errno(exc: BaseException) -> int | None:
    """The errno of a storage failure (also inside a safetensors error, which carries the OS error as text)."""
    if isinstance(exc, OSError):
        return exc.errno if exc.errno in STORAGE_ERRNOS else None
    if type(exc).__name__ == "SafetensorError":
        match = re.search(r"os error (\d+)|code: (\d+)", str(exc))
        code = int(match.group(1) or match.group(2)) if match else None
        if code in STORAGE_ERRNOS:
            return code
    if isinstance(exc, RuntimeError):  # torch.save reports the OS error in its message
        for code in STORAGE_ERRNOS:
            if os.strerror(code) in str(exc):
                return code
    return None


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2, default: Callable[[Any], Any] = str) -> Path:
    """JSON with a trailing newline, atomically; values json cannot encode go through `default` (str)."""
    return write_text(path, json.dumps(obj, indent=indent, default=default) + "\n")


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Tensors (moved to CPU, made contiguous) as a safetensors file, atomically."""
    from safetensors.torch import save_file

    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(flat, str(tmp)))


def save_torch(obj: Any, path: str | Path) -> Path:
    """`torch.save` (of tensors and plain values, readable weights-only), atomically."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def read_state_dict(path: str | Path, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The name -> tensor mapping of a safetensors file or a weights-only torch file (a `{"state_dict": ...}`
    wrapper is unwrapped). `what` names the file in errors (e.g. "--weights")."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {p} does not exist; pass a state dict saved with torch.save(model.state_dict(), PATH)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the user's file
        first = (str(exc).splitlines() or [type(exc).__name__])[0].split(". ")[0][:120]  # torch's first sentence
        raise ConfigError(f"{what} {p} is not a state dict readable weights-only ({first}); {SAVE_HINT}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ConfigError(f"{what} {p} is not a state dict (a mapping of names to tensors); {SAVE_HINT}")
    return state


def load_into(model: torch.nn.Module, path: str | Path, what: str = "--weights") -> None:
    """Read a state dict and load it into `model`, naming the first mismatch if it is not this model's."""
    state = read_state_dict(path, what)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"size mismatch for {wrong[0]}: file {tuple(state[wrong[0]].shape)} vs model "
                  f"{tuple(own[wrong[0]].shape)}" if wrong else
                  f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}")
        raise ConfigError(f"{what} {path} does not match the model ({detail}; {len(missing)} missing, "
                          f"{len(unexpected)} unexpected, {len(wrong)} wrong shapes); pass weights of this model")
    model.load_state_dict(state)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cpu', 'cuda', 'cuda:N' are honoured (checked)."""
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for but CUDA is not available here; use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    elif dev.type != "cpu":
        raise ConfigError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N")
    return dev
