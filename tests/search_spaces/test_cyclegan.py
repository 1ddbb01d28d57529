"""CycleGAN space: layouts, checkpoint loading, masks, physical pruning, counting, data reading."""

from pathlib import Path

import numpy as np
import pytest
import torch

from searchlab.search_spaces import cyclegan as cg
from searchlab.errors import ConfigError, DataError, InvalidArchitecture

TESTS = Path(__file__).resolve().parents[1]
MINI = TESTS / "data" / "horse2zebra_mini"
VINTAGE = TESTS.parents[1] / "shared" / "data" / "cyclegan" / "vintage_G_A2B.pth"
TINY = [4, 8, 16, 8, 4]


def tiny_generator(seed: int = 0, affine: bool = True, n_blocks: int = 2) -> cg.ResnetGenerator:
    torch.manual_seed(seed)
    gen = cg.ResnetGenerator(TINY, n_blocks, affine=affine)
    with torch.no_grad():  # non-trivial norm parameters so pruning must carry them over
        for m in gen.modules():
            if isinstance(m, torch.nn.InstanceNorm2d) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return gen.eval()


def random_bits(gen: cg.ResnetGenerator, seed: int, keep: float = 0.5) -> str:
    rng = np.random.default_rng(seed)
    return cg.repair(rng.random(cg.genome_length(gen)) < keep, gen, rng)


def test_full_size_layout_matches_the_reference_counts():
    with torch.device("meta"):
        plain = cg.ResnetGenerator([64, 128, 256, 128, 64], 9, affine=False)
        affine = cg.ResnetGenerator([64, 128, 256, 128, 64], 9, affine=True)
        six = cg.ResnetGenerator([64, 128, 256, 128, 64], 6)
    assert cg.genome_length(plain) == 640
    assert cg.count_params(plain) == 11_378_179  # the published CycleGAN generator
    assert cg.count_params(affine) == 11_388_675  # the README's affine checkpoint
    assert cg.size_mb(cg.count_params(plain)) == pytest.approx(43.40, abs=0.01)
    assert len(plain.convs()) == 3 + 18 + 2 and len(six.convs()) == 3 + 12 + 2
    assert cg.param_count(plain.widths, 9) == cg.count_params(plain)
    bits = "1" * 640
    assert len(cg.layer_masks(bits, plain)) == 23 and cg.channels_pruned(bits, plain) == 0
    one_each = "".join("1" + "0" * (w - 1) for w in plain.widths)
    assert cg.channels_pruned(one_each, plain) == 64 + 128 + 19 * 256 + 128 + 64 - 23


def test_masked_forward_equals_physically_pruned_generator():
    gen = tiny_generator()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for seed in range(3):
        bits = random_bits(gen, seed)
        with torch.no_grad():
            with cg.masked(gen, bits):
                y_masked = gen(x)
            small = cg.prune(gen, bits)
            y_small = small(x)
            y_full = gen(x)
        assert torch.allclose(y_masked, y_small, atol=1e-5)
        assert not torch.allclose(y_full, y_small, atol=1e-3)  # the mask really changed the output
        widths = [s.sum() for s in cg.split_mask(bits, gen)]
        assert list(small.widths) == widths
        assert cg.count_params(small) == cg.param_count(widths, 2, affine=True) < cg.count_params(gen)
    # the hooks are gone after the context, and the all-ones mask is the identity
    with torch.no_grad():
        assert torch.allclose(gen(x), y_full)
        assert torch.allclose(cg.prune(gen, cg.full_mask(gen))(x), y_full, atol=1e-6)


def test_flops_follow_the_conv_arithmetic():
    gen = tiny_generator(n_blocks=1)
    size = 32
    w0, w1, w2, w3, w4 = TINY
    macs = (3 * w0 * 49 * size ** 2 + w0 * w1 * 9 * (size // 2) ** 2 + w1 * w2 * 9 * (size // 4) ** 2
            + 2 * w2 * w2 * 9 * (size // 4) ** 2
            + w2 * w3 * 9 * (size // 4) ** 2 + w3 * w4 * 9 * (size // 2) ** 2  # transposed: per input pixel
            + w4 * 3 * 49 * size ** 2)
    assert cg.count_flops(gen, size) == 2 * macs
    small = cg.pruned_shape(gen, random_bits(gen, 1))
    assert cg.count_flops(small, size) < cg.count_flops(gen, size)


def test_checkpoint_variants_load_weights_only(tmp_path):
    gen = tiny_generator(affine=False)
    state = {k.replace(".block.", ".conv_block."): v for k, v in gen.state_dict().items()}
    state["model.2.running_mean"] = torch.zeros(4)  # old checkpoints carried unused statistics
    torch.save({"module." + k: v for k, v in state.items()}, tmp_path / "latest_net_G_B.pth")
    loaded = cg.load_generator(tmp_path / "latest_net_G_B.pth")
    assert not loaded.affine and loaded.n_blocks == 2 and loaded.widths == tuple(TINY)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), gen(x))
    disc = cg.PatchDiscriminator(3, 4, 2)
    torch.save(disc.state_dict(), tmp_path / "latest_net_D_B.pth")
    again = cg.load_discriminator(tmp_path / "latest_net_D_B.pth")
    with torch.no_grad():
        assert torch.equal(again(x.repeat(1, 1, 4, 4)), disc.eval()(x.repeat(1, 1, 4, 4)))
    # a pruned generator reloads with its own widths
    small = cg.prune(tiny_generator(), random_bits(gen, 2))
    torch.save(small.state_dict(), tmp_path / "small.pth")
    assert cg.load_generator(tmp_path / "small.pth").widths == small.widths


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    torch.save(torch.nn.Linear(4, 2).state_dict(), tmp_path / "linear.pth")
    with pytest.raises(DataError, match="not a CycleGAN ResnetGenerator"):
        cg.load_generator(tmp_path / "linear.pth")
    state = tiny_generator().state_dict()
    state["model.10.block.1.weight"] = torch.zeros(16, 16, 1, 1)
    torch.save(state, tmp_path / "wrong.pth")
    with pytest.raises(DataError, match="does not match") as err:
        cg.load_generator(tmp_path / "wrong.pth")
    assert "\n" not in str(err.value)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="is not a state dict readable weights-only"):
        cg.load_generator(tmp_path / "junk.pth")
    with pytest.raises(DataError, match="not a CycleGAN PatchGAN"):
        cg.load_discriminator(tmp_path / "linear.pth")


def test_find_checkpoints_maps_both_namings(tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    for name in ("latest_net_G_A", "latest_net_G_B", "latest_net_D_A", "latest_net_D_B", "5_net_G_A"):
        (ref / f"{name}.pth").write_bytes(b"")
    found = cg.find_checkpoints(ref)
    assert {k: v.name for k, v in found.items()} == {
        "G_A": "latest_net_G_A.pth", "G_B": "latest_net_G_B.pth", "D_A": "latest_net_D_A.pth",
        "D_B": "latest_net_D_B.pth"}
    a2b = tmp_path / "a2b"
    a2b.mkdir()
    for name in ("netG_A2B", "netG_B2A", "netD_A", "netD_B"):
        (a2b / f"{name}.pth").write_bytes(b"")
    found = cg.find_checkpoints(a2b)
    assert found["G_A"].name == "netG_A2B.pth" and found["D_A"].name == "netD_B.pth"
    with pytest.raises(DataError, match="no generator checkpoint"):
        cg.find_checkpoints(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        cg.find_checkpoints(tmp_path / "missing")


def test_mask_rules_and_mask_files(tmp_path):
    gen = tiny_generator()
    with pytest.raises(InvalidArchitecture, match="39 bits but this generator needs 40"):
        cg.split_mask("1" * 39, gen)
    with pytest.raises(InvalidArchitecture, match="segment 0 keeps no channel"):
        cg.split_mask("0000" + "1" * 36, gen)
    rng = np.random.default_rng(0)
    repaired = cg.repair(np.zeros(40, bool), gen, rng)
    assert [s.sum() for s in cg.split_mask(repaired, gen)] == [1] * 5
    (tmp_path / "m.json").write_text('{"A": "%s"}' % ("1" * 40))
    assert cg.read_mask_file(tmp_path / "m.json", gen, "A") == "1" * 40
    (tmp_path / "short.txt").write_text("1" * 30)
    with pytest.raises(DataError, match="30 bits but this generator needs 40"):
        cg.read_mask_file(tmp_path / "short.txt", gen)
    with pytest.raises(DataError, match="no mask for side 'B'"):
        cg.read_mask_file(tmp_path / "m.json", gen, "B")


def test_reads_the_unpaired_fixture_and_rejects_bad_folders(tmp_path):
    data = cg.read_unpaired(MINI, crop=32)
    assert {k: tuple(v.shape) for k, v in data.items()} == {
        "trainA": (2, 3, 32, 32), "trainB": (2, 3, 32, 32), "testA": (1, 3, 32, 32), "testB": (1, 3, 32, 32)}
    assert data["trainA"].dtype == torch.uint8 and data["trainA"].float().std() > 10
    x = cg.to_unit(data["trainA"])
    assert -1 <= float(x.min()) and float(x.max()) <= 1
    with pytest.raises(DataError, match="larger than the images"):
        cg.read_unpaired(MINI, crop=128)
    from PIL import Image

    (tmp_path / "trainA").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "trainA" / "a.png")
    with pytest.raises(DataError, match="trainB"):
        cg.read_unpaired(tmp_path)
    (tmp_path / "trainB").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "trainB" / "b.png")
    Image.new("RGB", (24, 16)).save(tmp_path / "trainB" / "c.png")
    with pytest.raises(DataError, match="mixed sizes"):
        cg.read_unpaired(tmp_path)


def test_space_genomes_validate_key_and_describe():
    gen_a, gen_b = tiny_generator(0), tiny_generator(1)
    images = cg.read_unpaired(MINI, crop=32)
    space = cg.CycleganSpace({"A": gen_a, "B": gen_b}, {}, images, flops_size=32)
    rng = np.random.default_rng(0)
    g = space.sample(rng)
    assert space.validate(g) == g and g["partner"] is None
    child = space.mutate(g, rng)
    assert child["mask"] != g["mask"] and len(child["mask"]) == 40
    paired = {**g, "partner": space.random_mask("B", rng)}
    assert space.key(paired) != space.key(g) and space.key(g) == space.key(dict(g))
    info = space.describe(g)
    assert info["params"] == cg.count_params(cg.prune(gen_a, g["mask"]))
    assert info["param_ratio"] > 1 and info["flops"] < space.full_description("A")["flops"]
    with pytest.raises(InvalidArchitecture):
        space.validate({"side": "C", "mask": g["mask"]})
    only_a = cg.CycleganSpace({"A": gen_a}, {}, images)
    with pytest.raises(InvalidArchitecture, match="no G_B"):
        only_a.validate({"side": "B", "mask": g["mask"]})


@pytest.mark.skipif(not VINTAGE.is_file(), reason="needs ../shared/data/cyclegan/vintage_G_A2B.pth")
def test_real_trained_generator_loads_and_prunes_exactly():
    gen = cg.load_generator(VINTAGE)
    assert cg.count_params(gen) == 11_388_675 and gen.n_blocks == 9 and gen.affine
    assert cg.genome_length(gen) == 640
    bits = random_bits(gen, 0, keep=0.8)
    x = cg.to_unit(cg.read_unpaired(MINI, crop=32)["testA"])
    with torch.no_grad():
        with cg.masked(gen, bits):
            y_masked = gen(x)
        y_small = cg.prune(gen, bits)(x)
    assert torch.allclose(y_masked, y_small, atol=1e-4)


SHARED_H2Z = TESTS.parents[1] / "shared" / "data" / "unpaired" / "horse2zebra_mini"


@pytest.mark.skipif(not SHARED_H2Z.is_dir(), reason="needs ../shared/data/unpaired/horse2zebra_mini")
def test_shared_horse2zebra_sample_reads_at_small_crops():
    full = cg.read_unpaired(SHARED_H2Z)
    assert tuple(full["trainA"].shape) == (2, 3, 256, 256)
    crops = cg.read_unpaired(SHARED_H2Z, crop=48)
    assert tuple(crops["testB"].shape) == (1, 3, 48, 48)
    assert torch.equal(crops["testB"], full["testB"][:, :, 104:152, 104:152])  # the centre


def test_random_crops_are_windows_of_the_training_images():
    images = cg.read_unpaired(MINI)["trainA"]
    crops = cg.random_crops(images, 16, 6, torch.Generator().manual_seed(0))
    assert tuple(crops.shape) == (6, 3, 16, 16)
    again = cg.random_crops(images, 16, 6, torch.Generator().manual_seed(0))
    assert torch.equal(crops, again)

    def found(c):
        for im in images:
            for cand in (c, c.flip(-1)):
                windows = im.unfold(1, 16, 1).unfold(2, 16, 1)  # [3, H-15, W-15, 16, 16]
                if (windows == cand[:, None, None]).all(0).all(-1).all(-1).any():
                    return True
        return False

    assert all(found(c) for c in crops)
    assert len({c.float().sum().item() for c in crops}) > 1
