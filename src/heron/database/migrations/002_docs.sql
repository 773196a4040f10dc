-- Heron 002: documentation search (text side).
-- Plain SQL, safe to run twice. Vectors live in doc_embeddings, which the docs store
-- creates when the server has pgvector (CREATE EXTENSION vector), so this migration
-- works on any PostgreSQL >= 14 and full-text search works everywhere.

CREATE TABLE IF NOT EXISTS doc_documents (
    id           BIGSERIAL PRIMARY KEY,
    source       TEXT NOT NULL UNIQUE,          -- path or URL, as given to `heron docs ingest`
    title        TEXT NOT NULL,
    kind         TEXT NOT NULL,                 -- markdown | html | text
    ingested_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS doc_chunks (
    id            BIGSERIAL PRIMARY KEY,
    document_id   BIGINT NOT NULL REFERENCES doc_documents (id) ON DELETE CASCADE,
    chunk_index   INTEGER NOT NULL,
    heading_path  TEXT[] NOT NULL DEFAULT '{}',
    heading_text  TEXT NOT NULL DEFAULT '',     -- the path joined, for full-text search
    anchor        TEXT NOT NULL DEFAULT '',
    text          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,                -- sha256 of heading path + text
    search        TSVECTOR GENERATED ALWAYS AS (
                      setweight(to_tsvector('english', heading_text), 'A')
                      || setweight(to_tsvector('english', text), 'B')
                  ) STORED,
    CONSTRAINT doc_chunks_document_hash_key UNIQUE (document_id, content_hash)
);
CREATE INDEX IF NOT EXISTS doc_chunks_search_idx ON doc_chunks USING gin (search);
