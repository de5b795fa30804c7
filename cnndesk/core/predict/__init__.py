"""Using a model: the classifier, the streaming folder job, videos and clips, embeddings, explanations, result files."""
