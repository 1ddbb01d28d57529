# Over 400 lines on purpose: one short reader per data format users have, sharing one set of decoding limits.
"""Readers for the image data sets users already have, as uint8 tensors ready for the trainer.

Formats: ImageFolder trees (`root/<class>/*.jpg|png`, optionally split into `train/` and `test/`,
as a folder or a .tar/.tar.gz of one), CIFAR-10 python batches (`data_batch_1..5`, `test_batch`; read
with a restricted unpickler that only rebuilds numpy arrays) and binary batches (`*.bin`), MNIST idx
files (`.gz` or plain), HR image folders for super-resolution and CycleGAN folders
(`trainA`, `trainB`, `testA`, `testB`). A bad file raises a one-line `DataError` naming it.

On the command line a data set is a spec `KIND:PATH` (`cifar10:PATH`, `mnist:PATH`,
`imagefolder:PATH`); `split_holdout` makes the seeded train/validation split of `--train-size` and
`--val-fraction`.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from searchlab.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DATA_KINDS = ("cifar10", "mnist", "imagefolder")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass
class ImageTensors:
    """Images as one uint8 tensor [N, C, H, W], their int64 labels [N] (or None) and class names."""

    x: torch.Tensor
    y: torch.Tensor | None
    classes: list[str]

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise ValueError(f"ImageTensors.x must be uint8 [N,C,H,W], got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"ImageTensors: {len(self.x)} images but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: torch.Tensor | np.ndarray | list[int]) -> "ImageTensors":
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return ImageTensors(self.x[index], None if self.y is None else self.y[index], list(self.classes))


@dataclass
class ClassificationData:
    """A labelled set: `train`, the official `test` split when the format has one, and the class count."""

    train: ImageTensors
    test: ImageTensors | None
    num_classes: int


# --------------------------------------------------------------------------------------------------
# data specs and splits
# --------------------------------------------------------------------------------------------------

def parse_data_spec(spec: str) -> tuple[str, str]:
    """'cifar10:PATH' | 'mnist:PATH' | 'imagefolder:PATH' -> (kind, path)."""
    kind, sep, path = str(spec).partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in DATA_KINDS or not path.strip():
        raise DataError(f"data spec {spec!r} must be KIND:PATH with KIND one of {', '.join(DATA_KINDS)}, "
                        f"e.g. --data cifar10:data/cifar-10-batches-py")
    return kind, os.path.expanduser(path.strip())


def load_classification(spec: str, *, image_size: int | None = None) -> ClassificationData:
    """Read the labelled data set named by a data spec (see `parse_data_spec`)."""
    kind, path = parse_data_spec(spec)
    if not os.path.exists(path):
        raise DataError(f"{path} does not exist; check the path in --data {spec}")
    from searchlab import progress

    with progress.step(f"reading {spec}"):
        if kind == "mnist":
            data = load_mnist(path)
        elif kind == "cifar10":
            data = load_cifar10(path)
        else:
            data = load_image_folder(path, image_size=image_size)
    if image_size and data.train.x.shape[-1] != image_size:
        data = ClassificationData(_resize_all(data.train, image_size),
                                  _resize_all(data.test, image_size) if data.test is not None else None,
                                  data.num_classes)
    return data


def split_holdout(data: ImageTensors, *, val_fraction: float | None = None, train_size: int | None = None,
                  seed: int = 0) -> tuple[ImageTensors, ImageTensors]:
    """A seeded random split into (train, held-out validation).

    `val_fraction` of the images go to validation (0.2 when not given; 0 = none); `train_size`, when
    given, caps the training part (taken from the rest), e.g. 10,000 CIFAR-10 images for a fast proxy.
    """
    n = len(data)
    frac = 0.2 if val_fraction is None else float(val_fraction)
    if not 0.0 <= frac < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {frac}")
    n_val = int(round(n * frac))
    if frac > 0 and n_val == 0:
        n_val = 1
    rest = n - n_val
    n_train = rest if not train_size else int(train_size)
    if n_train <= 0 or n_train > rest:
        raise DataError(f"train_size {train_size} does not fit: the data set has {n} images and {n_val} are "
                        f"held out for validation; use --train-size <= {rest} or a smaller --val-fraction")
    perm = np.random.Generator(np.random.PCG64(int(seed))).permutation(n)
    # shuffled order, so that the first k images of either part are a random sample too
    return data.subset(perm[n_val:n_val + n_train]), data.subset(perm[:n_val])


# --------------------------------------------------------------------------------------------------
# image decoding
# --------------------------------------------------------------------------------------------------

def _decode(raw: bytes, name: str, mode: str | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:
            img = img.convert(mode) if mode else (img.convert("RGB") if img.mode not in ("L", "RGB") else img)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {name}: {str(exc).splitlines()[0] or type(exc).__name__}; "
                        f"remove or replace the file") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None


MAX_MEMBER_BYTES = 256 * 2**20  # one image or one CIFAR-10 batch inside an archive (a batch is ~31 MB)


def decompressed_limit(default: int = 4 * 2**30) -> int:
    """Most bytes one compressed input may expand to: `default`, or $SEARCHLAB_MAX_DECOMPRESSED_MB megabytes."""
    value = os.environ.get("SEARCHLAB_MAX_DECOMPRESSED_MB", "")
    try:
        return int(float(value) * 2**20) if value else default
    except ValueError:
        raise DataError(f"SEARCHLAB_MAX_DECOMPRESSED_MB must be a number of megabytes, got {value!r}") from None


def _gunzip(raw: bytes, path: Path, limit: int) -> bytes:
    """gzip data decompressed up to `limit` bytes: a crafted file (a compression bomb) stops there."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise DataError(f"{path} is a damaged gzip file ({exc}); download it again") from None
    if len(out) > limit:
        raise DataError(f"{path} decompresses to more than {limit / 2**20:.0f} MB, more than a data set of its kind "
                        f"holds; if it is genuine, raise SEARCHLAB_MAX_DECOMPRESSED_MB")
    if not d.eof:
        raise DataError(f"{path} is a truncated gzip file; download it again")
    return out


class _ArchiveBudget:
    """Bytes read out of one archive so far, against the per-member and whole-archive limits."""

    def __init__(self, path: Path) -> None:
        self.path, self.used, self.limit = path, 0, decompressed_limit()

    def read(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
        if member.size > MAX_MEMBER_BYTES:
            raise DataError(f"{self.path}: member {member.name} is {member.size / 2**20:.0f} MB, more than any image "
                            f"or CIFAR-10 batch ({MAX_MEMBER_BYTES / 2**20:.0f} MB); this is not a data set archive")
        self.used += member.size
        if self.used > self.limit:
            raise DataError(f"{self.path} expands to more than {self.limit / 2**20:.0f} MB; if it is genuine, "
                            f"raise SEARCHLAB_MAX_DECOMPRESSED_MB")
        return tar.extractfile(member).read()


def _decode_many(items: list[tuple[str, bytes | Path]], mode: str | None = None) -> list[np.ndarray]:
    """Decode many images in threads (Pillow releases the GIL while decoding)."""
    def one(item: tuple[str, bytes | Path]) -> np.ndarray:
        name, src = item
        return _decode(_read_bytes(src) if isinstance(src, Path) else src, name, mode)

    if len(items) < 64:
        return [one(it) for it in items]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2))) as pool:
        return list(pool.map(one, items, chunksize=256))


def _stack(arrays: list[np.ndarray], names: list[str], where: str, image_size: int | None) -> torch.Tensor:
    """HWC arrays -> uint8 [N,C,H,W]; grey images join colour ones as RGB; sizes must agree (or are resized)."""
    if image_size:
        arrays = [_resize_hwc(a, image_size) for a in arrays]
    channels = max(a.shape[2] for a in arrays)
    if channels == 3:
        arrays = [np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a for a in arrays]
    first = arrays[0].shape
    for a, name in zip(arrays, names):
        if a.shape != first:
            raise DataError(f"image {name} is {a.shape[1]}x{a.shape[0]} but others in {where} are "
                            f"{first[1]}x{first[0]}; pass --image-size N to resize them all")
    return torch.from_numpy(np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2)))


def _resize_hwc(a: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if a.shape[0] == size and a.shape[1] == size:
        return a
    img = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
    out = np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8)
    return out[:, :, None] if out.ndim == 2 else out


def _resize_all(data: ImageTensors, size: int) -> ImageTensors:
    arrays = [_resize_hwc(a, size) for a in data.x.permute(0, 2, 3, 1).numpy()]
    x = torch.from_numpy(np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2)))
    return ImageTensors(x, data.y, data.classes)


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not Path(name).name.startswith(".")


# --------------------------------------------------------------------------------------------------
# ImageFolder (a folder or a tar archive)
# --------------------------------------------------------------------------------------------------

def _folder_items(root: Path) -> dict[str, list[tuple[str, Path]]]:
    """class name -> [(file name, path)] for an ImageFolder tree; every class folder must hold images."""
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class folders; an ImageFolder tree is ROOT/<class>/*.jpg|png")
    out = {}
    for c in classes:
        files = sorted(f for f in c.iterdir() if f.is_file() and _is_image(f.name))
        if not files:
            raise DataError(f"class folder {c} holds no images ({', '.join(IMAGE_SUFFIXES[:3])}, ...); "
                            f"add images or remove the folder")
        out[c.name] = [(str(f), f) for f in files]
    return out


def _tar_items(path: Path) -> dict[str, dict[str, list[tuple[str, bytes]]]]:
    """split ('' when none) -> class -> [(member name, bytes)] for an ImageFolder tree inside a tar archive."""
    out: dict[str, dict[str, list[tuple[str, bytes]]]] = {}
    budget = _ArchiveBudget(path)
    try:
        with tarfile.open(path) as tar:
            for m in tar:
                if not m.isfile() or not _is_image(m.name):
                    continue
                parts = [p for p in m.name.split("/") if p not in ("", ".")]
                if len(parts) < 2:
                    continue
                split = parts[-3] if len(parts) >= 3 and parts[-3] in ("train", "test") else ""
                out.setdefault(split, {}).setdefault(parts[-2], []).append((f"{path}:{m.name}", budget.read(tar, m)))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"cannot read archive {path}: {exc}") from None
    if not out:
        raise DataError(f"archive {path} holds no images in <class>/ folders")
    return {s: {c: sorted(v) for c, v in sorted(d.items())} for s, d in out.items()}


def _labelled(items: dict[str, list[tuple[str, bytes | Path]]], classes: list[str], where: str,
              image_size: int | None) -> ImageTensors:
    flat = [(name, src, classes.index(c)) for c, lst in items.items() for name, src in lst]
    arrays = _decode_many([(n, s) for n, s, _ in flat])
    x = _stack(arrays, [n for n, _, _ in flat], where, image_size)
    return ImageTensors(x, torch.tensor([lab for _, _, lab in flat], dtype=torch.int64), classes)


def load_image_folder(path: str | Path, *, image_size: int | None = None) -> ClassificationData:
    """An ImageFolder tree `root/<class>/*`, or `root/train/<class>/*` + `root/test/<class>/*`.

    A .tar/.tar.gz archive of either layout is read without extracting it.
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root} does not exist; pass the folder that holds one sub-folder per class")
    if root.is_file():
        if not tarfile.is_tarfile(root):
            raise DataError(f"{root} is a file but not a tar archive; pass an ImageFolder directory")
        splits = _tar_items(root)
        if "train" in splits:
            train_items, test_items = splits["train"], splits.get("test")
        else:
            train_items, test_items = splits.get("", {}), None
    else:
        subdirs = {p.name for p in root.iterdir() if p.is_dir()}
        if "train" in subdirs:
            train_items = _folder_items(root / "train")
            test_items = _folder_items(root / "test") if "test" in subdirs else None
        else:
            train_items, test_items = _folder_items(root), None
    classes = sorted(train_items)
    if test_items is not None:
        extra = sorted(set(test_items) - set(classes))
        if extra:
            raise DataError(f"{root}: test classes {', '.join(extra)} have no train folder; "
                            f"train/ and test/ must use the same class names")
    train = _labelled(train_items, classes, str(root), image_size)
    test = _labelled(test_items, classes, str(root), image_size) if test_items else None
    return ClassificationData(train, test, len(classes))


# --------------------------------------------------------------------------------------------------
# CIFAR-10: python batches, binary batches, or the ImageFolder layout
# --------------------------------------------------------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds only dicts, lists, strings, bytes and numpy arrays: a CIFAR batch and nothing else."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_python_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:  # noqa: BLE001 - any failure means this is not a CIFAR batch
        raise DataError(f"{name} is not a CIFAR-10 python batch ({exc}); use the files of "
                        f"cifar-10-python.tar.gz") from None
    if not isinstance(batch, dict):
        raise DataError(f"{name} is not a CIFAR-10 python batch (no dict inside)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{name} is not a CIFAR-10 python batch: keys 'data' and 'labels' missing")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{name}: 'data' should be N x 3072 bytes, got shape {data.shape}")
    if len(labels) != len(data):
        raise DataError(f"{name}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_binary_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    if len(raw) % 3073:
        raise DataError(f"{name} is not a CIFAR-10 binary batch: {len(raw)} bytes is not a multiple of 3073")
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3073)
    labels = rec[:, 0].astype(np.int64)
    if labels.max(initial=0) > 9:
        raise DataError(f"{name}: label {labels.max()} out of range 0..9; is this CIFAR-100?")
    return rec[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _cifar_files(path: Path) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]] | None:
    """(train, test) batch files from a folder or a tar archive; None when there are none."""
    train_names = {f"data_batch_{i}" for i in range(1, 6)} | {f"data_batch_{i}.bin" for i in range(1, 6)}
    test_names = {"test_batch", "test_batch.bin"}
    found: dict[str, tuple[str, bytes]] = {}
    if path.is_dir():
        for d in (path, path / "cifar-10-batches-py", path / "cifar-10-batches-bin"):
            if d.is_dir():
                for f in sorted(d.iterdir()):
                    if f.name in train_names | test_names:
                        found[f.name] = (str(f), _read_bytes(f))
    elif tarfile.is_tarfile(path):
        budget = _ArchiveBudget(path)
        try:
            with tarfile.open(path) as tar:
                for m in tar:
                    base = m.name.rsplit("/", 1)[-1]
                    if m.isfile() and base in train_names | test_names:
                        found[base] = (f"{path}:{m.name}", budget.read(tar, m))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"cannot read archive {path}: {exc}") from None
    if not found:
        return None
    train = [found[k] for k in sorted(found) if k in train_names]
    test = [found[k] for k in sorted(found) if k in test_names]
    return train, test


def _cifar_join(files: list[tuple[str, bytes]]) -> ImageTensors:
    xs, ys = [], []
    for name, raw in files:
        x, y = (_cifar_binary_batch if name.endswith(".bin") else _cifar_python_batch)(raw, name)
        xs.append(x)
        ys.append(y)
    return ImageTensors(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)),
                        list(CIFAR10_CLASSES))


def load_cifar10(path: str | Path) -> ClassificationData:
    """CIFAR-10 from python batches, binary batches (folder or the official .tar.gz), or an ImageFolder
    layout with `train/` and `test/` (folder or archive)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p} does not exist; pass the cifar-10-batches-py folder or an ImageFolder tree")
    files = _cifar_files(p)
    if files is None:
        if p.is_dir() and not (p / "train").is_dir() and not any(c.is_dir() for c in p.iterdir()):
            raise DataError(f"{p} holds neither CIFAR-10 batches (data_batch_1..5, test_batch) nor an "
                            f"ImageFolder tree (train/<class>/*.jpg)")
        return load_image_folder(p)
    train, test = files
    if not train and not test:
        raise DataError(f"{p}: no CIFAR-10 batches found")
    if not train:
        return ClassificationData(_cifar_join(test), None, 10)
    return ClassificationData(_cifar_join(train), _cifar_join(test) if test else None, 10)


# --------------------------------------------------------------------------------------------------
# MNIST idx files
# --------------------------------------------------------------------------------------------------

MAX_IDX_BYTES = 64 * 2**20  # MNIST's and Fashion-MNIST's largest file, the training images, is 47,040,016 bytes
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """One idx file (plain or .gz) as a numpy array; the magic number and size are checked."""
    p = Path(path)
    raw = _read_bytes(p)
    if raw[:2] == b"\x1f\x8b":
        raw = _gunzip(raw, p, decompressed_limit(MAX_IDX_BYTES))
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or not 1 <= raw[3] <= 4:
        magic = raw[:4].hex() if len(raw) >= 4 else "missing"
        raise DataError(f"{p} has magic number 0x{magic}, not an idx file (expected 0x00000801 for labels or "
                        f"0x00000803 for images)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{p} is truncated: its idx header is incomplete")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != need:
        raise DataError(f"{p} is truncated or padded: header says {shape} ({need} bytes) but it holds "
                        f"{len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _find_idx(root: Path, prefix: str, kind: str) -> Path | None:
    for name in (f"{prefix}-{kind}", f"{prefix}-{kind}.gz",
                 f"{prefix}-{kind}".replace("-idx", ".idx"), f"{prefix}-{kind}.gz".replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    return None


def _mnist_pair(images: Path, labels: Path) -> ImageTensors:
    x = read_idx(images)
    y = read_idx(labels)
    if x.ndim != 3:
        raise DataError(f"{images} holds a {x.ndim}-d array; MNIST images are N x 28 x 28 (magic 0x00000803)")
    if y.ndim != 1:
        raise DataError(f"{labels} holds a {y.ndim}-d array; MNIST labels are a vector (magic 0x00000801)")
    if len(x) != len(y):
        raise DataError(f"{images} has {len(x)} images but {labels} has {len(y)} labels; use matching files")
    classes = [str(i) for i in range(10)]
    return ImageTensors(torch.from_numpy(x.astype(np.uint8)[:, None].copy()),
                        torch.from_numpy(y.astype(np.int64)), classes)


def load_mnist(path: str | Path) -> ClassificationData:
    """MNIST (or Fashion-MNIST) idx files in a folder: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
    t10k-...; when only the t10k pair is there, it becomes the training set (split it with --val-fraction)."""
    root = Path(path)
    if root.is_file():
        root = root.parent
    if not root.is_dir():
        raise DataError(f"{root} does not exist; pass the folder that holds the MNIST idx files")
    pairs = {}
    for prefix in ("train", "t10k"):
        img, lab = _find_idx(root, prefix, "images-idx3-ubyte"), _find_idx(root, prefix, "labels-idx1-ubyte")
        if img and not lab:
            raise DataError(f"{img} has no labels file beside it ({prefix}-labels-idx1-ubyte[.gz])")
        if lab and not img:
            raise DataError(f"{lab} has no images file beside it ({prefix}-images-idx3-ubyte[.gz])")
        if img:
            pairs[prefix] = _mnist_pair(img, lab)
    if not pairs:
        raise DataError(f"{root} holds no MNIST idx files (train-images-idx3-ubyte[.gz], "
                        f"t10k-images-idx3-ubyte[.gz] and their labels)")
    if "train" in pairs:
        return ClassificationData(pairs["train"], pairs.get("t10k"), 10)
    return ClassificationData(pairs["t10k"], None, 10)


# --------------------------------------------------------------------------------------------------
# unlabelled image folders: super-resolution HR sets and CycleGAN domains
# --------------------------------------------------------------------------------------------------

def _image_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of images; check the path")
    files = sorted(f for f in root.iterdir() if f.is_file() and _is_image(f.name))
    if not files:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES[:3])}, ...)")
    return files


def _as_chw(arrays: Iterable[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))) for a in arrays]


def load_hr_folder(path: str | Path) -> list[torch.Tensor]:
    """All images of a folder (sorted by name) as RGB uint8 tensors [3, H, W] of their own sizes.

    These are the high-resolution targets of super-resolution; the LR inputs are made from them by
    bicubic downscaling (the SR space owns that step so its kernel matches MATLAB's imresize).
    """
    files = _image_files(Path(path))
    return _as_chw(_decode_many([(str(f), f) for f in files], mode="RGB"))


load_image_folder_hr = load_hr_folder


def load_unpaired(path: str | Path) -> dict[str, list[torch.Tensor]]:
    """A CycleGAN folder: `trainA`, `trainB` (required), `testA`, `testB` (optional, else empty) as lists of
    RGB uint8 tensors [3, H, W]."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root} does not exist; pass a CycleGAN folder with trainA/ and trainB/")
    out: dict[str, list[torch.Tensor]] = {}
    for part in ("trainA", "trainB", "testA", "testB"):
        sub = root / part
        if not sub.is_dir():
            if part.startswith("train"):
                raise DataError(f"{root} has no {part}/ folder; a CycleGAN data set has trainA/, trainB/ "
                                f"(and optionally testA/, testB/)")
            out[part] = []
            continue
        out[part] = load_hr_folder(sub)
    return out

