"""Efficient residual dense blocks and the super-resolution backbone they are searched in (ESRN).

Song et al., "Efficient Residual Dense Block Search for Image Super-Resolution", AAAI 2020.

Backbone (all convs at LR resolution unless said): shallow features F-1 = conv3x3(3 -> G0),
F0 = conv3x3(G0 -> G0); a chain of the used blocks; global feature fusion conv1x1(concat of every
block output -> G0) then conv3x3(G0 -> G0), plus F-1; upsampler conv3x3(G0 -> 3 s^2) + PixelShuffle(s);
plus (option `skip="bicubic"`) the MATLAB-bicubic upscaled input, so the net learns a residual.

Genome: {"blocks": [slot, ...]} with `slots` entries, each {"used": 0|1, "type": "SRDB"|"GRDB"|"CRDB",
"convs": 4|6|8, "growth": 8|16|24|32, "out": output channels}. Unused slots keep their genes (they can
be switched back on by mutation) but do not change the network; `key` only looks at used blocks.

Blocks (input channels c, C convs, growth g, output channels o; every block ends with a local
fusion conv1x1 to o and adds its input when c == o):
- SRDB, shrink: dense layer j = conv1x1(c + j g -> g) on the dense concatenation, then
  conv3x3(g -> g) + ReLU. The 3x3 convs stay g -> g whatever the depth.
- GRDB, group: dense layer j = group conv3x3(c + j g -> g, `groups` groups) + ReLU + channel shuffle.
- CRDB, contextual: 2x2 average pooling, dense layers conv3x3(c + j g -> g) + ReLU at half
  resolution, fusion conv1x1(c + C g -> 4 o) and PixelShuffle(2) back to full resolution.
- RDB, the plain residual dense block of RDN (dense conv3x3(c + j g -> g) + ReLU); not searched,
  used by the hand-designed baseline.

Closed forms (a conv k x k, a -> b channels, `grp` groups: k^2 a b / grp weights + b biases, and as many
mult-adds per output pixel as weights): see `conv_specs`; mult-adds count convolutions only, as papers do.

One module a job: `blocks` (genes and closed-form cost), `network` (the SRNet a genome builds),
`mutation`, `space` (the search space), `config` (its configuration), `images` (LR/HR pairs and
PSNR/SSIM scoring), `export` (an exported model folder) and `plugin` (registers the space).
"""

from searchlab.search_spaces.sr_blocks.blocks import (BLOCK_TYPES, CONVS, GROWTHS, OUTS, GENES, SCALES, PAPER_OUTPUT,
                                                      ConvSpec, used_blocks, block_label, block_specs, conv_specs,
                                                      count_params, count_mult_adds)
from searchlab.search_spaces.sr_blocks.network import channel_shuffle, DenseBlock, SRNet
from searchlab.search_spaces.sr_blocks.mutation import mut_blocks, random_block
from searchlab.search_spaces.sr_blocks.space import parse_size, parse_range, SRBlockSpace, uniform_chain, baseline_rdn
from searchlab.search_spaces.sr_blocks.config import SRSpaceConfig, make_space
from searchlab.search_spaces.sr_blocks.images import (load_pairs, centre_crop, upscale_bicubic, super_resolve,
                                                      score_images)
from searchlab.search_spaces.sr_blocks.export import export_model, load_model

__all__ = ["BLOCK_TYPES", "CONVS", "ConvSpec", "DenseBlock", "GENES", "GROWTHS", "OUTS", "PAPER_OUTPUT", "SCALES",
           "SRBlockSpace", "SRNet", "SRSpaceConfig", "baseline_rdn", "block_label", "block_specs", "centre_crop",
           "channel_shuffle", "conv_specs", "count_mult_adds", "count_params", "export_model", "load_model",
           "load_pairs", "make_space", "mut_blocks", "parse_range", "parse_size", "random_block", "score_images",
           "super_resolve", "uniform_chain", "upscale_bicubic", "used_blocks"]
