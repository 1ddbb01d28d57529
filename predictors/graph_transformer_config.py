"""Options of the graph-transformer predictor, kept free of torch so the command line lists them instantly."""

from __future__ import annotations

from dataclasses import dataclass

from searchlab.errors import ConfigError
from searchlab.options import opt


MAX_PARAMS = 2**27  # weights over the ensemble's encoder blocks (512 MB in float32)


@dataclass(frozen=True)
class GraphTransformerConfig:
    """Graph-transformer predictor options"""

    gt_dim: int = opt(32, help="token width of the graph transformer")
    gt_layers: int = opt(3, help="transformer encoder blocks")
    gt_heads: int = opt(4, help="attention heads per block")
    gt_pe: int = opt(4, help="Laplacian eigenvectors per vertex as positional encoding")
    gt_costs: bool = opt(False, help="add each vertex's FLOPs and parameters in the 9 network cells (the ReNAS cost "
                                    "model; NAS-Bench-101 cells only) to its token")
    gt_dropout: float = opt(0.1, help="dropout in the blocks and the regressor while fine-tuning")
    gt_epochs: int = opt(100, help="fine-tuning epochs on the labelled cells (at least; see --gt-min-steps)")
    gt_min_steps: int = opt(1200, help="fine-tuning runs at least this many optimizer steps, so small label sets get "
                                       "more epochs (100 labels in batches of 32: 300)", old_default=0)
    gt_batch: int = opt(32, help="ranking pairs are formed within a batch of this many cells; 0 = all")
    gt_lr: float = opt(3e-3, help="AdamW learning rate of the regressor while fine-tuning")
    gt_encoder_lr_scale: float = opt(3.0, help="the pretrained encoder learns at this times --gt-lr")
    gt_weight_decay: float = opt(1e-2, help="AdamW weight decay while fine-tuning")
    gt_ensemble: int = opt(3, help="networks fine-tuned with different seeds; their standardised scores are averaged")
    gt_pretrain_epochs: int = opt(4, help="label-free pretraining epochs over every cell of the table (done once, "
                                          "cached on disk); 0 = no pretraining")
    gt_pretrain_cells: int = opt(0, help="pretrain on a seeded sample of this many cells; 0 = all")
    gt_pretrain_lr: float = opt(2e-3, help="peak AdamW learning rate of the pretraining")
    gt_mask: float = opt(0.3, help="share of interior vertices whose op is masked and reconstructed in pretraining")

    def __post_init__(self) -> None:
        checks = [(self.gt_dim >= 1 and self.gt_heads >= 1 and self.gt_dim % self.gt_heads == 0,
                   f"--gt-dim must be a positive multiple of --gt-heads, got {self.gt_dim} and {self.gt_heads}"),
                  (self.gt_layers >= 1, f"--gt-layers must be >= 1, got {self.gt_layers}"),
                  (12 * self.gt_dim ** 2 * self.gt_layers * self.gt_ensemble <= MAX_PARAMS,
                   f"--gt-dim, --gt-layers and --gt-ensemble ask for {self.gt_dim}^2 x 12 x {self.gt_layers} x "
                   f"{self.gt_ensemble} weights, more than {MAX_PARAMS:,}"),
                  (1 <= self.gt_pe <= 8, f"--gt-pe must be from 1 to 8 (a cell has at most 8 vertices), got {self.gt_pe}"),
                  (0 <= self.gt_dropout < 1, f"--gt-dropout must be in [0, 1), got {self.gt_dropout}"),
                  (self.gt_epochs >= 1, f"--gt-epochs must be >= 1, got {self.gt_epochs}"),
                  (self.gt_min_steps >= 0, f"--gt-min-steps must be >= 0, got {self.gt_min_steps}"),
                  (self.gt_batch >= 0, f"--gt-batch must be >= 0 (0 = all), got {self.gt_batch}"),
                  (self.gt_lr > 0 and self.gt_pretrain_lr > 0, "--gt-lr and --gt-pretrain-lr must be > 0"),
                  (self.gt_encoder_lr_scale >= 0, "--gt-encoder-lr-scale must be >= 0"),
                  (self.gt_weight_decay >= 0, "--gt-weight-decay must be >= 0"),
                  (self.gt_ensemble >= 1, f"--gt-ensemble must be >= 1, got {self.gt_ensemble}"),
                  (self.gt_pretrain_epochs >= 0 and self.gt_pretrain_cells >= 0,
                   "--gt-pretrain-epochs and --gt-pretrain-cells must be >= 0"),
                  (0 <= self.gt_mask <= 1, f"--gt-mask must be in [0, 1], got {self.gt_mask}")]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
