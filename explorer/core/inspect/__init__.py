"""Looking inside a loaded model: attention (and its compact store), hidden states and embeddings."""
