"""Lightning glue: the pose module, the data module, the LR schedule and callbacks."""
