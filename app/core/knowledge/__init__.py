"""Knowledge: the user's folders, indexed into Chroma and SQLite FTS5 as files
change, searched for passages to answer from (with citations).

`base.KnowledgeBase` is the entry point; heavy modules (chromadb, onnxruntime)
are imported only when one is opened.
"""
