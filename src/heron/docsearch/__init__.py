"""Documentation search: chunk docs, embed the chunks, find the passages that answer a question."""
