"""Teaching a model: the dataset scan, the one train() entry, quick mode's head, full fine-tuning, metrics, distributed set-up."""
