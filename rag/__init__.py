"""The RAG core: Confluence pages in, cited answers out. Knows nothing of the chat platforms."""
