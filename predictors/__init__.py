"""Performance predictors and the predictor-guided search strategy."""
