"""Registers the `nasbench201` space and the `nb201-table` evaluator (a built-in plug-in)."""

from __future__ import annotations

from searchlab.search_spaces.nasbench201.space import (NasBench201Space, NB201SpaceConfig, NB201TableConfig,
                                                       TableEvaluator201, finalize)
from searchlab.search_spaces.nasbench201.table import load_table
from searchlab import registry

registry.register_space(
    "nasbench201", factory=lambda config, ctx: NasBench201Space(config), config=NB201SpaceConfig,
    default_strategy="evolution", default_evaluator="nb201-table", finalize=finalize,
    table=lambda: load_table().test_accuracy,
    help="NAS-Bench-201 cells (Dong & Yang 2020): 15,625 arch strings, 4,930 functionally distinct")

registry.register_evaluator(
    "nb201-table", factory=lambda space, config, ctx: TableEvaluator201(dataset=config.dataset),
    config=NB201TableConfig, spaces=("nasbench201",),
    help="look NAS-Bench-201 cells up in the bundled table (test accuracy after 200 epochs; CIFAR-10, or --dataset)")
