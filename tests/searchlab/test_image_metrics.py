"""PSNR/SSIM on Y and MATLAB-compatible bicubic: the evaluation protocol SR papers share."""

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from searchlab.training.image_metrics import modcrop, psnr, rgb_to_y, shave, ssim
from searchlab.training.imresize import downscale, imresize, resize_weights, torch_imresize

SET5 = Path(__file__).resolve().parents[1] / "data" / "set5"


@functools.lru_cache(maxsize=None)
def _set5() -> list[torch.Tensor]:
    return [torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)
            for f in sorted(SET5.glob("*.png"))]


def test_y_channel_is_bt601_studio_range():
    white = torch.full((3, 2, 2), 255, dtype=torch.uint8)
    black = torch.zeros((3, 2, 2), dtype=torch.uint8)
    red = torch.zeros((3, 1, 1), dtype=torch.uint8)
    red[0] = 255
    assert torch.allclose(rgb_to_y(white), torch.full((1, 2, 2), 235.0, dtype=torch.float64))
    assert torch.allclose(rgb_to_y(black), torch.full((1, 2, 2), 16.0, dtype=torch.float64))
    assert rgb_to_y(red).item() == pytest.approx(16 + 65.481)
    grey = torch.full((1, 3, 3), 100, dtype=torch.uint8)  # one channel counts as R = G = B
    assert rgb_to_y(grey)[0, 0, 0].item() == pytest.approx(16 + 219 * 100 / 255)


def test_psnr_matches_mse_formula_and_shave_drops_borders():
    hr = torch.full((3, 20, 20), 100.0)
    sr = hr.clone()
    sr[:, 5:15, 5:15] += 3.0  # the same error on every channel -> Y error 3 * 219/255
    err = 3.0 * 219.0 / 255.0
    expected = 10 * np.log10(255 ** 2 / (err ** 2 * 100 / 400))
    assert psnr(sr, hr).item() == pytest.approx(expected, abs=1e-6)
    sr[:, 0, :] += 50.0  # damage in the first row only: shaved away
    assert psnr(sr, hr, border=2).item() == pytest.approx(10 * np.log10(255 ** 2 / (err ** 2 * 100 / 256)), abs=1e-6)
    batch = psnr(torch.stack([sr, hr + 1]), torch.stack([hr, hr]), y_channel=False)
    assert batch.shape == (2,) and batch[1].item() == pytest.approx(10 * np.log10(255 ** 2), abs=1e-9)


def test_ssim_is_one_for_equal_images_and_drops_with_noise():
    gen = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, 40, 40), generator=gen).to(torch.uint8)
    assert ssim(img, img).item() == pytest.approx(1.0, abs=1e-12)
    noisy = (img.float() + torch.randn(img.shape, generator=gen) * 20).clamp(0, 255)
    very = (img.float() + torch.randn(img.shape, generator=gen) * 60).clamp(0, 255)
    s1, s2 = ssim(noisy, img, border=2).item(), ssim(very, img, border=2).item()
    assert 0 < s2 < s1 < 1
    with pytest.raises(ValueError):
        ssim(img[:, :8, :8], img[:, :8, :8])


def test_modcrop_and_shave_shapes():
    x = torch.zeros(3, 101, 67)
    assert modcrop(x, 4).shape == (3, 100, 64)
    assert shave(x, 3).shape == (3, 95, 61)
    assert shave(x, 0).shape == x.shape


def test_resize_weights_rows_sum_to_one_and_constant_images_stay_constant():
    for n_in, n_out, scale in [(12, 6, 0.5), (10, 30, 3.0), (9, 3, 1 / 3), (7, 28, 4.0)]:
        w = resize_weights(n_in, n_out, scale)
        assert w.shape == (n_out, n_in)
        assert np.allclose(w.sum(1), 1.0)
    flat = np.full((3, 24, 36), 77, dtype=np.uint8)
    assert (imresize(flat, 0.5) == 77).all() and imresize(flat, 0.5).shape == (3, 12, 18)
    assert imresize(flat, 3).shape == (3, 72, 108)


def test_bicubic_reproduces_a_linear_ramp_away_from_the_borders():
    # Keys' cubic kernel reproduces linear signals exactly, with and without the antialiasing stretch:
    # shrinking by 2 averages pixel pairs, enlarging by 2 samples at x/2 - 1/4 (MATLAB's pixel centres).
    ramp = np.arange(32, dtype=np.float64)[None, None, :].repeat(4, axis=1)
    down = imresize(ramp, size=(2, 16))
    assert np.allclose(down[0, :, 3:13], 2 * np.arange(3, 13) + 0.5, atol=1e-9)
    up = imresize(ramp, 2)
    assert np.allclose(up[0, 0, 4:60], np.arange(4, 60) / 2 - 0.25, atol=1e-9)


def test_torch_resize_matches_numpy():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 13, 17, generator=gen, dtype=torch.float64) * 255
    ours = torch_imresize(x, 3.0, antialias=False)
    ref = np.stack([imresize(img.numpy(), 3) for img in x])
    assert np.allclose(ours.numpy(), ref, atol=1e-9)


@functools.lru_cache(maxsize=None)
def _bicubic_set5(scale: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(MATLAB-bicubic upscaled LR, HR) pairs of Set5 at a scale: the field's 'bicubic' row."""
    pairs = []
    for hr in _set5():
        hr = modcrop(hr, scale)
        lr = downscale(hr, scale)
        assert lr.dtype == torch.uint8 and lr.shape[-1] * scale == hr.shape[-1]
        pairs.append((torch.from_numpy(imresize(lr.numpy(), scale)), hr))
    return pairs


@pytest.mark.parametrize("scale,published", [(2, 33.66), (3, 30.39), (4, 28.42)])
def test_bicubic_on_set5_matches_published_figures(scale, published):
    scores = [psnr(up, hr, border=scale).item() for up, hr in _bicubic_set5(scale)]
    assert np.mean(scores) == pytest.approx(published, abs=0.05)


def test_bicubic_ssim_on_set5_x2_matches_published_figure():
    scores = [ssim(up, hr, border=2).item() for up, hr in _bicubic_set5(2)]
    assert np.mean(scores) == pytest.approx(0.9299, abs=0.002)
