"""Training real networks: the shared trainer and its evaluator, data readers, augmentation, image metrics."""
