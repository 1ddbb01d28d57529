"""The data readers on small real fixtures: formats, specs, seeded splits and one-line errors on bad input."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from searchlab.training.data import (CIFAR10_CLASSES, ImageTensors, load_cifar10, load_classification, load_hr_folder,
                            load_image_folder, load_mnist, load_unpaired, parse_data_spec, read_idx,
                            split_holdout)
from searchlab.errors import DataError

DATA = Path(__file__).resolve().parents[1] / "data"
CIFAR = DATA / "cifar10_mini"
MNIST = DATA / "mnist_mini"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def cifar():
    return load_image_folder(CIFAR)


# ------------------------------------------------------------------------------------------ ImageFolder

def test_image_folder_reads_train_and_test_splits(cifar):
    assert cifar.num_classes == 10
    assert cifar.train.classes == CIFAR10_CLASSES
    assert tuple(cifar.train.x.shape) == (200, 3, 32, 32) and cifar.train.x.dtype == torch.uint8
    assert tuple(cifar.test.x.shape) == (50, 3, 32, 32)
    assert torch.bincount(cifar.train.y).tolist() == [20] * 10
    assert torch.bincount(cifar.test.y).tolist() == [5] * 10
    # real photos, not blank: the channel means sit near CIFAR-10's (0.49, 0.48, 0.45)
    means = cifar.train.x.float().mean(dim=(0, 2, 3)) / 255
    assert torch.all((means > 0.35) & (means < 0.6))


def test_image_folder_pixels_match_pillow(cifar):
    from PIL import Image

    first = sorted((CIFAR / "train" / "airplane").iterdir())[0]
    expected = np.asarray(Image.open(first).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(cifar.train.x[0].numpy(), expected)


def test_specs_reach_the_same_reader(cifar):
    for spec in (f"cifar10:{CIFAR}", f"imagefolder:{CIFAR}"):
        data = load_classification(spec)
        assert torch.equal(data.train.x, cifar.train.x) and torch.equal(data.train.y, cifar.train.y)


def test_tar_archive_reads_like_the_folder(tmp_path, cifar):
    archive = tmp_path / "mini.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(CIFAR / "train", arcname="train")
        tar.add(CIFAR / "test", arcname="test")
    data = load_classification(f"cifar10:{archive}")
    assert torch.equal(data.train.x, cifar.train.x) and torch.equal(data.test.y, cifar.test.y)


def test_flat_image_folder_has_no_test_split(cifar):
    data = load_classification(f"imagefolder:{CIFAR / 'test'}")
    assert data.test is None and len(data.train) == 50 and data.num_classes == 10


def test_grey_and_colour_images_mix_as_rgb(tmp_path):
    from PIL import Image

    for cls, mode in (("a", "L"), ("b", "RGB")):
        (tmp_path / cls).mkdir()
        Image.new(mode, (8, 8), 100 if mode == "L" else (10, 20, 30)).save(tmp_path / cls / "x.png")
    data = load_image_folder(tmp_path)
    assert tuple(data.train.x.shape) == (2, 3, 8, 8)
    assert data.train.x[0, :, 0, 0].tolist() == [100, 100, 100]


def test_mixed_sizes_need_image_size(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "small.png")
    Image.new("RGB", (12, 10)).save(tmp_path / "a" / "wide.png")
    with pytest.raises(DataError, match=r"wide\.png.*--image-size"):
        load_image_folder(tmp_path)
    data = load_classification(f"imagefolder:{tmp_path}", image_size=16)
    assert tuple(data.train.x.shape) == (2, 3, 16, 16)


def test_empty_class_folder_is_named(tmp_path):
    shutil.copytree(CIFAR / "test" / "cat", tmp_path / "cat")
    (tmp_path / "dog").mkdir()
    with pytest.raises(DataError, match=r"dog.*holds no images"):
        load_image_folder(tmp_path)


def test_unreadable_image_is_named(tmp_path):
    shutil.copytree(CIFAR / "test" / "cat", tmp_path / "cat")
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError, match=r"cannot read image .*broken\.jpg"):
        load_image_folder(tmp_path)


def test_missing_path_and_bad_specs():
    with pytest.raises(DataError, match="does not exist"):
        load_classification("cifar10:/no/such/folder")
    for spec in ("cifar10", "svhn:/data", "mnist:", "/data/cifar"):
        with pytest.raises(DataError, match="KIND:PATH"):
            parse_data_spec(spec)
    assert parse_data_spec("MNIST:/d/m") == ("mnist", "/d/m")


# ------------------------------------------------------------------------------------------ CIFAR-10 batches

def _python_batches(folder: Path, data: ImageTensors, parts: int) -> None:
    """Write `data` as CIFAR-10 python batches, keyed by bytes as the official (Python 2) files are."""
    folder.mkdir(parents=True)
    flat = data.x.reshape(len(data), -1).numpy()
    chunks = np.array_split(np.arange(len(data)), parts)
    for i, idx in enumerate(chunks, start=1):
        batch = {b"batch_label": b"training batch", b"data": flat[idx], b"labels": data.y[idx].tolist(),
                 b"filenames": [b"x.png"] * len(idx)}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))


def test_cifar_python_batches(tmp_path, cifar):
    root = tmp_path / "cifar-10-batches-py"
    _python_batches(root, cifar.train, parts=5)
    (root / "test_batch").write_bytes(pickle.dumps(
        {b"data": cifar.test.x.reshape(50, -1).numpy(), b"labels": cifar.test.y.tolist()}, protocol=2))
    for path in (root, tmp_path):  # the batches folder itself or its parent
        data = load_cifar10(path)
        assert torch.equal(data.train.x, cifar.train.x) and torch.equal(data.train.y, cifar.train.y)
        assert torch.equal(data.test.x, cifar.test.x) and data.num_classes == 10
    archive = tmp_path / "cifar-10-python.tar.gz"  # the official download, read without extracting
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="cifar-10-batches-py")
    data = load_classification(f"cifar10:{archive}")
    assert torch.equal(data.train.x, cifar.train.x) and torch.equal(data.test.y, cifar.test.y)


def test_cifar_binary_batches(tmp_path, cifar):
    rec = np.concatenate([cifar.train.y.numpy().astype(np.uint8)[:, None],
                          cifar.train.x.reshape(200, -1).numpy()], axis=1)
    (tmp_path / "data_batch_1.bin").write_bytes(rec.tobytes())
    data = load_classification(f"cifar10:{tmp_path}")
    assert torch.equal(data.train.x, cifar.train.x) and torch.equal(data.train.y, cifar.train.y)
    (tmp_path / "data_batch_1.bin").write_bytes(rec.tobytes()[:-5])
    with pytest.raises(DataError, match=r"data_batch_1\.bin.*multiple of 3073"):
        load_cifar10(tmp_path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_cifar_batch_never_unpickles_code(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({"data": _Evil(), "labels": [0]}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_1 is not a CIFAR-10 python batch"):
        load_cifar10(tmp_path)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_cifar_batch_label_count_mismatch(tmp_path, cifar):
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(
        {b"data": cifar.test.x.reshape(50, -1).numpy(), b"labels": [0] * 49}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_1: 50 images but 49 labels"):
        load_cifar10(tmp_path)


# ------------------------------------------------------------------------------------------ MNIST

def test_mnist_fixture_is_the_official_test_digits():
    data = load_classification(f"mnist:{MNIST}")
    assert tuple(data.train.x.shape) == (1000, 1, 28, 28) and data.test is None
    assert data.train.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the published first labels
    assert torch.bincount(data.train.y, minlength=10).min() >= 80
    assert data.train.x[0].max() == 255 and data.train.x[0, 0, 0].sum() == 0  # white digit, black border


def _plain_copy(tmp_path: Path, prefix: str = "train") -> Path:
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        raw = gzip.decompress((MNIST / f"t10k-{kind}.gz").read_bytes())
        (tmp_path / f"{prefix}-{kind}").write_bytes(raw)
    return tmp_path


def test_mnist_plain_idx_and_train_test_pairs(tmp_path):
    _plain_copy(tmp_path, "train")
    shutil.copy(MNIST / "t10k-images-idx3-ubyte.gz", tmp_path)
    shutil.copy(MNIST / "t10k-labels-idx1-ubyte.gz", tmp_path)
    data = load_mnist(tmp_path)
    assert len(data.train) == 1000 and len(data.test) == 1000
    assert torch.equal(data.train.x, data.test.x)


def test_mnist_wrong_magic_is_named(tmp_path):
    _plain_copy(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    raw = bytearray(path.read_bytes())
    raw[2] = 0x42
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte has magic number 0x00004203"):
        load_mnist(tmp_path)


def test_mnist_label_count_mismatch_is_named(tmp_path):
    _plain_copy(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte"
    raw = path.read_bytes()
    path.write_bytes(raw[:4] + struct.pack(">I", 999) + raw[8:-1])
    with pytest.raises(DataError, match=r"1000 images but .*train-labels-idx1-ubyte has 999 labels"):
        load_mnist(tmp_path)


def test_mnist_truncated_file(tmp_path):
    _plain_copy(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_mnist_missing_labels(tmp_path):
    shutil.copy(MNIST / "t10k-images-idx3-ubyte.gz", tmp_path)
    with pytest.raises(DataError, match="no labels file"):
        load_mnist(tmp_path)


# ------------------------------------------------------------------------------------------ splits

def test_split_holdout_is_seeded_disjoint_and_sized(cifar):
    data = cifar.train
    data_ids = ImageTensors(data.x, torch.arange(len(data)), data.classes)  # labels = row ids
    tr, va = split_holdout(data_ids, val_fraction=0.25, seed=7)
    assert (len(tr), len(va)) == (150, 50)
    assert set(tr.y.tolist()).isdisjoint(va.y.tolist())
    tr2, va2 = split_holdout(data_ids, val_fraction=0.25, seed=7)
    assert torch.equal(va.y, va2.y)
    _, va3 = split_holdout(data_ids, val_fraction=0.25, seed=8)
    assert not torch.equal(va.y, va3.y)
    small, va4 = split_holdout(data_ids, val_fraction=0.25, train_size=40, seed=7)
    assert len(small) == 40 and torch.equal(va4.y, va.y) and set(small.y.tolist()) <= set(tr.y.tolist())
    # the parts come shuffled: a prefix of a class-ordered set is still a mix of classes
    first20, _ = split_holdout(data, val_fraction=0.1, train_size=20, seed=0)
    assert len(set(first20.y.tolist())) >= 5
    with pytest.raises(DataError, match="train_size 151 does not fit"):
        split_holdout(data_ids, val_fraction=0.25, train_size=151, seed=7)


# ------------------------------------------------------------------------------------------ SR and CycleGAN folders

def test_hr_folder_and_unpaired(tmp_path):
    for part, cls in (("trainA", "horse"), ("trainB", "frog"), ("testA", "horse")):
        shutil.copytree(CIFAR / "test" / cls, tmp_path / part)
    hr = load_hr_folder(tmp_path / "trainA")
    assert len(hr) == 5 and all(t.shape == (3, 32, 32) and t.dtype == torch.uint8 for t in hr)
    parts = load_unpaired(tmp_path)
    assert [len(parts[k]) for k in ("trainA", "trainB", "testA", "testB")] == [5, 5, 5, 0]
    shutil.rmtree(tmp_path / "trainB")
    with pytest.raises(DataError, match="no trainB/"):
        load_unpaired(tmp_path)
    with pytest.raises(DataError, match="holds no images"):
        load_hr_folder(_empty(tmp_path / "empty"))


def _empty(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.skipif(not (SHARED / "sr" / "Set5").is_dir(), reason="../shared/data is not present")
def test_set5_hr_images_keep_their_sizes():
    hr = load_hr_folder(SHARED / "sr" / "Set5")
    assert len(hr) == 5 and {tuple(t.shape) for t in hr} >= {(3, 512, 512), (3, 256, 256)}


def _gzip_of_zeros(path, megabytes: int, header: bytes = b"") -> None:
    """A small .gz that expands to `megabytes` MB (a compression bomb), written without holding it."""
    import zlib

    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(2**20)
    with open(path, "wb") as f:
        f.write(comp.compress(header))
        for _ in range(megabytes):
            f.write(comp.compress(zeros))
        f.write(comp.flush())


@pytest.mark.slow
def test_compression_bombs_stop_at_a_bound_with_one_line(tmp_path):
    import subprocess
    import sys

    # an MNIST-looking .gz expanding to 512 MB: refused after at most 64 MB, in bounded memory
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_of_zeros(bomb, 512, header=bytes([0, 0, 8, 3]) + (60000).to_bytes(4, "big") * 3)
    assert bomb.stat().st_size < 2 * 2**20
    probe = ("import resource, sys\nfrom searchlab.training.data import read_idx\nfrom searchlab.errors import DataError\n"
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "try:\n    read_idx(sys.argv[1])\nexcept DataError as exc:\n    print(exc)\n"
             "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", probe, str(bomb)], capture_output=True, text=True, timeout=120)
    message, grown_mb = out.stdout.strip().splitlines()
    assert "decompresses to more than 64 MB" in message and "SEARCHLAB_MAX_DECOMPRESSED_MB" in message
    assert int(grown_mb) < 200, f"reading the bomb grew memory by {grown_mb} MB"
    # an image archive with a 1 GB member is refused from its header, before anything is read
    archive = tmp_path / "images.tar.gz"

    class Zeros:
        def __init__(self, n):
            self.left = n

        def read(self, size=-1):
            size = self.left if size < 0 else min(size, self.left)
            self.left -= size
            return bytes(size)

    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("train/cat/huge.png")
        info.size = 2**30
        tar.addfile(info, Zeros(info.size))
    with pytest.raises(DataError, match="huge.png is 1024 MB"):
        load_image_folder(archive)
