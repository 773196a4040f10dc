"""What answers questions: the model-backed agent, and retrieval-only mode without a model."""
