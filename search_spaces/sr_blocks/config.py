"""The `sr` space's configuration (scale, backbone width, slots, parameter range) and the space it builds."""

from __future__ import annotations

from dataclasses import dataclass

from searchlab.errors import ConfigError
from searchlab.options import opt
from searchlab.protocols import Context
from searchlab.search_spaces.sr_blocks.blocks import SCALES
from searchlab.search_spaces.sr_blocks.space import SRBlockSpace, parse_size
from searchlab.size_target import SizeBudget, parse_target, target_opt


@dataclass(frozen=True)
class SRSpaceConfig:
    """Super-resolution block space"""

    scale: int = opt(2, help="upscaling factor", choices=SCALES)
    g0: int = opt(32, help="feature channels of the backbone (G0)")
    slots: int = opt(20, help="block slots in the chain")
    min_blocks: int = opt(4, help="fewest used blocks a network may have")
    params: str = opt("300k:330k", help="parameter range LOW:HIGH, e.g. 300k:330k (enforced by repeated mutation, "
                                        "as in the paper; --max-params replaces it)")
    max_params: str = target_opt("parameters", None)
    max_mult_adds: str = opt("0", help="cap on mult-adds for a 1280x720 output, e.g. 80G (0 = none)")
    skip: str = opt("bicubic", help="global skip: add the bicubic-upscaled input (bicubic) or not (none)",
                    choices=("bicubic", "none"))

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ConfigError(f"--scale must be 2, 3 or 4, got {self.scale}")
        if self.slots < 1 or self.slots > 64:
            raise ConfigError(f"--slots must be between 1 and 64, got {self.slots}")
        parse_target(self.max_params, "params", ratio=False)  # a malformed --max-params is refused now


def make_space(config: SRSpaceConfig, ctx: Context | None = None) -> SRBlockSpace:
    """The space; with `--max-params N` its range is 0:N and the GA core repairs every network to within 2%
    under N (`space.budget`)."""
    target = parse_target(config.max_params, "params", ratio=False)
    params = f"0:{target.value:.0f}" if target else config.params
    space = SRBlockSpace(scale=config.scale, g0=config.g0, slots=config.slots, min_blocks=config.min_blocks,
                         params=params, max_mult_adds=parse_size(config.max_mult_adds), skip=config.skip,
                         params_flag=f"--max-params {target.text}" if target else None)
    space.budget = SizeBudget("params", target.value) if target else None
    return space
