"""The RAG core: Confluence pages in, cited answers out. Knows nothing of Slack or Teams."""
