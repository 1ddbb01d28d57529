"""Registers the predictors `renas`, `semi-gcn`, `graph-transformer` and `blend`, the guided-search
strategies of the same names, and `consensus`, guided search with ReNAS and the assessor."""

from __future__ import annotations

from dataclasses import dataclass

from searchlab.predictors.blend import BlendPredictor
from searchlab.predictors.configs import BlendConfig
from searchlab.predictors.graph_transformer import GraphTransformerPredictor
from searchlab.predictors.graph_transformer_config import GraphTransformerConfig
from searchlab.predictors.guided_search import GuidedSearchConfig, strategy_factory
from searchlab.predictors.renas import ReNASConfig, ReNASPredictor
from searchlab.predictors.semi_gcn import SemiGCNConfig, SemiGCNPredictor
from searchlab import registry
from searchlab.options import opt


@dataclass(frozen=True)
class IterativeSearchConfig(GuidedSearchConfig):
    """Guided search, iterative by default"""

    # 200 random cells, then 6 rounds of refitting and querying the 39 best predicted (ReNAS: median rank 4
    # over 20 seeds against 165 for one fit on 424 + 10; docs/benchmarks.md). The one-shot protocol:
    # --initial 424 --rounds 1 --top-k 10.
    initial: int = opt(200, help="random cells queried before the first predictor fit")
    top_k: int = opt(39, help="predicted-best cells queried after each fit")
    rounds: int = opt(6, help="fit -> query top-k rounds; each refits on everything queried so far "
                              "(one-shot protocol: --initial 424 --rounds 1 --top-k 10)")


@dataclass(frozen=True)
class ReNASSearchConfig(IterativeSearchConfig, ReNASConfig):
    """Guided search with the ReNAS ranker"""

    def __post_init__(self) -> None:
        GuidedSearchConfig.__post_init__(self)
        ReNASConfig.__post_init__(self)


@dataclass(frozen=True)
class SemiGCNSearchConfig(GuidedSearchConfig, SemiGCNConfig):
    """Guided search with the semi-supervised GCN assessor"""

    def __post_init__(self) -> None:
        GuidedSearchConfig.__post_init__(self)
        SemiGCNConfig.__post_init__(self)


@dataclass(frozen=True)
class ConsensusSearchConfig(GuidedSearchConfig, ReNASConfig, SemiGCNConfig):
    """Guided search with both the ReNAS ranker and the semi-supervised GCN assessor"""

    def __post_init__(self) -> None:
        GuidedSearchConfig.__post_init__(self)
        ReNASConfig.__post_init__(self)
        SemiGCNConfig.__post_init__(self)


registry.register_predictor("renas", cls=ReNASPredictor,
                            help="ReNAS feature-tensor ranker (Xu et al. 2021): 19x7x7 tensor, CNN, pairwise loss")
registry.register_predictor("semi-gcn", cls=SemiGCNPredictor,
                            help="semi-supervised GCN assessor (Tang et al. 2020): auto-encoder + relation graph + GCN")

registry.register_strategy(
    "renas", factory=strategy_factory(ReNASPredictor), config=ReNASSearchConfig, spaces=("nasbench101", "nasbench201"),
    help="query --initial random cells, fit the ReNAS ranker, query its --top-k best predicted cells")
registry.register_strategy(
    "semi-gcn", factory=strategy_factory(SemiGCNPredictor), config=SemiGCNSearchConfig, spaces=("nasbench101", "nasbench201"),
    help="query --initial random cells, fit the semi-supervised GCN assessor with --unlabeled cells, query its "
         "--top-k best predicted cells")
registry.register_strategy(
    "consensus", factory=strategy_factory(ReNASPredictor, SemiGCNPredictor), config=ConsensusSearchConfig,
    spaces=("nasbench101", "nasbench201"),
    help="query --initial random cells, fit both the ReNAS ranker and the semi-supervised GCN assessor, query "
         "the --top-k cells they both rank highest (a cell's place is its worse place in the two rankings)")


@dataclass(frozen=True)
class GraphTransformerSearchConfig(IterativeSearchConfig, GraphTransformerConfig):
    """Guided search with the graph-transformer ranker"""

    # One network per fit, 100 epochs however few the labels, and refits of 30 epochs from the first fit: 434
    # queries in about a minute, ahead of regularized evolution on 19 of 20 seeds (median rank 2), 150 queries on
    # 18 of 20. The predictor's own defaults (3 networks, at least 1,200 steps) rank better on a fixed split, but
    # in the rounds they did worse: at least 1,200 steps, 17 and 14 of 20 (docs/benchmarks.md).
    gt_ensemble: int = opt(1, help="networks fine-tuned with different seeds; their standardised scores are averaged")
    gt_min_steps: int = opt(0, help="fine-tuning runs at least this many optimizer steps (0: --gt-epochs alone)")
    refit_epochs: int = opt(30, help="later rounds train a copy of the first fit for this many epochs on every query "
                                     "so far; 0 = a fresh fit every round")

    def __post_init__(self) -> None:
        GuidedSearchConfig.__post_init__(self)
        GraphTransformerConfig.__post_init__(self)


registry.register_predictor(
    "graph-transformer", cls=GraphTransformerPredictor,
    help="graph transformer over the cell DAG (TNASP/PINAT, GMAE-NAS pretraining on every cell), pairwise loss")
registry.register_strategy(
    "graph-transformer", factory=strategy_factory(GraphTransformerPredictor), config=GraphTransformerSearchConfig,
    spaces=("nasbench101", "nasbench201"),
    help="query --initial random cells, fit the graph transformer, query its --top-k best predicted cells")


@dataclass(frozen=True)
class BlendSearchConfig(IterativeSearchConfig, BlendConfig):
    """Guided search with the graph transformer + assessor blend"""

    def __post_init__(self) -> None:
        GuidedSearchConfig.__post_init__(self)
        BlendConfig.__post_init__(self)


registry.register_predictor(
    "blend", cls=BlendPredictor,
    help="the graph transformer and the semi-supervised GCN assessor, their standardised predictions averaged "
         "(--blend-weight on the graph transformer)")
registry.register_strategy(
    "blend", factory=strategy_factory(BlendPredictor), config=BlendSearchConfig, spaces=("nasbench101", "nasbench201"),
    help="query --initial random cells, fit the graph transformer + assessor blend, query its --top-k best "
         "predicted cells")
