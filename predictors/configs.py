"""Options of the predictors, kept free of torch so the command line can list them instantly."""

from __future__ import annotations

from dataclasses import dataclass

from searchlab.errors import ConfigError
from searchlab.predictors.graph_transformer_config import GraphTransformerConfig
from searchlab.options import opt


MAX_ORDERS = 720  # 6!: the topological orders of the six inner vertices of the largest encoded cell (NAS-Bench-201)
MAX_WIDTH = 4096  # embedding and hidden widths (a saved predictor cannot ask for a network of terabytes)
MAX_LAYERS = 64
MAX_UNLABELED = 423_624  # every cell of NAS-Bench-101


@dataclass(frozen=True)
class ReNASConfig:
    """ReNAS predictor options"""

    renas_epochs: int = opt(200, help="training epochs of the ReNAS ranker")
    renas_lr: float = opt(1e-3, help="Adam learning rate of the ReNAS ranker")
    renas_batch: int = opt(0, help="ranking pairs are formed within a batch; 0 = the whole training set")
    renas_augment: bool = opt(True, help="train on random topological re-orderings of each cell's vertices "
                                         "(the same network, so the same label)")
    renas_dropout: float = opt(0.3, help="dropout before the last two fully connected layers while training")
    renas_average_from: float = opt(0.25, help="keep the mean of the network's weights over the epochs after this "
                                               "fraction of training (stochastic weight averaging); 1 = the last weights")
    renas_orders: int = opt(1, help="predict each cell as the mean over this many vertex orders (its own and "
                                    "fixed random topological re-orderings); 8 ranks better at 8x the time")

    def __post_init__(self) -> None:
        if self.renas_epochs < 1:
            raise ConfigError(f"--renas-epochs must be >= 1, got {self.renas_epochs}")
        if not self.renas_lr > 0:
            raise ConfigError(f"--renas-lr must be > 0, got {self.renas_lr}")
        if self.renas_batch < 0:
            raise ConfigError(f"--renas-batch must be >= 0 (0 = whole set), got {self.renas_batch}")
        if not 0 <= self.renas_dropout < 1:
            raise ConfigError(f"--renas-dropout must be in [0, 1), got {self.renas_dropout}")
        if not 0 <= self.renas_average_from <= 1:
            raise ConfigError(f"--renas-average-from must be in [0, 1], got {self.renas_average_from}")
        if not 1 <= self.renas_orders <= MAX_ORDERS:
            raise ConfigError(f"--renas-orders must be from 1 to {MAX_ORDERS} (a cell has at most {MAX_ORDERS} vertex "
                              f"orders), got {self.renas_orders}")


@dataclass(frozen=True)
class SemiGCNConfig:
    """Semi-supervised GCN assessor options"""

    unlabeled: int = opt(10000, help="unlabelled cells (sampled from the table) joining the relation graph")
    knn: int = opt(1, help="nearest neighbours k per cell in the relation graph")
    sigma: float = opt(0.0, help="Gaussian width of relation-graph weights; 0 = mean k-NN distance")
    lam: float = opt(1.0, help="weight lambda of the auto-encoder reconstruction loss")
    embed_dim: int = opt(32, help="cell embedding size")
    hidden: int = opt(64, help="hidden units of the assessor GCN")
    gcn_layers: int = opt(2, help="GCNConv layers of the assessor")
    gcn_epochs: int = opt(400, help="training epochs of the assessor")
    rebuild_every: int = opt(25, help="rebuild the relation graph from the embeddings every M epochs")
    gcn_lr: float = opt(2e-3, help="Adam learning rate of the assessor")
    dropout: float = opt(0.1, help="dropout between assessor GCN layers")
    target_transform: str = opt("rank", help="what the assessor regresses: rank = normal scores of the targets' "
                                             "ranks, zscore = standardised targets clipped at +-3",
                                choices=("rank", "zscore"))

    def __post_init__(self) -> None:
        checks = [(self.unlabeled >= 0, "unlabeled must be >= 0"),
                  (self.sigma >= 0, "sigma must be >= 0 (0 = automatic)"), (self.lam >= 0, "lam must be >= 0"),
                  (self.unlabeled <= MAX_UNLABELED, f"unlabeled must be <= {MAX_UNLABELED} (the table's cells)"),
                  (1 <= self.embed_dim <= MAX_WIDTH and 1 <= self.hidden <= MAX_WIDTH,
                   f"embed_dim and hidden must be from 1 to {MAX_WIDTH}"),
                  (1 <= self.knn <= 1000, "knn must be from 1 to 1000"),
                  (1 <= self.gcn_layers <= MAX_LAYERS, f"gcn_layers must be from 1 to {MAX_LAYERS}"), (self.gcn_epochs >= 1, "gcn_epochs must be >= 1"),
                  (self.rebuild_every >= 1, "rebuild_every must be >= 1"), (self.gcn_lr > 0, "gcn_lr must be > 0"),
                  (0 <= self.dropout < 1, "dropout must be in [0, 1)")]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)


@dataclass(frozen=True)
class BlendConfig(GraphTransformerConfig, SemiGCNConfig):
    """Graph transformer + assessor blend options (each member's own options, and the weight)"""

    blend_weight: float = opt(0.65, help="weight of the graph transformer's standardised prediction; the assessor's "
                                         "is 1 minus it")

    def __post_init__(self) -> None:
        GraphTransformerConfig.__post_init__(self)
        SemiGCNConfig.__post_init__(self)
        if not 0 <= self.blend_weight <= 1:
            raise ConfigError(f"--blend-weight must be in [0, 1], got {self.blend_weight}")
