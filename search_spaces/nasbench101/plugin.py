"""Registers the `nasbench101` space and the `table` evaluator (imported by the CLI as a plug-in)."""

from __future__ import annotations

from searchlab.search_spaces.nasbench101.evaluator import TableEvaluator, TableEvaluatorConfig, finalize
from searchlab.search_spaces.nasbench101.space import NasBench101Space, NB101SpaceConfig
from searchlab.search_spaces.nasbench101.table import load_table
from searchlab import registry

registry.register_space(
    "nasbench101", factory=lambda config, ctx: NasBench101Space(config), config=NB101SpaceConfig,
    default_strategy="evolution", default_evaluator="table", finalize=finalize,
    table=lambda: load_table().test_accuracy,
    help="NAS-Bench-101 cells (Ying et al. 2019): 423,624 unique cells, official hash as key")

registry.register_evaluator(
    "table", factory=lambda space, config, ctx: TableEvaluator(config), config=TableEvaluatorConfig,
    spaces=("nasbench101",),
    help="look NAS-Bench-101 cells up in the benchmark table (bundled, or imported with `nasbench101 import`)")
