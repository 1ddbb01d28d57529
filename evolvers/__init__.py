"""Evolutionary strategies built on DEAP operators: baselines and the four compression searches."""
