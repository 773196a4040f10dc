-- Heron 005: word counts for docs full-text search.
-- How many chunks have each word (each lexeme of doc_chunks.search): BM25's document
-- frequency, which the full-text ranking weighs words by and picks candidate words with.
-- Triggers keep it as chunks come and go, so a search reads a few rows of it instead of
-- counting every word's matches, a cost that grew with the corpus. The row for ''
-- (never a lexeme) counts all chunks. Every write to doc_chunks takes that row first,
-- so concurrent ingests wait for each other instead of deadlocking on the words they
-- share.

CREATE TABLE IF NOT EXISTS doc_terms (
    lexeme  TEXT PRIMARY KEY,
    chunks  BIGINT NOT NULL
);

-- Add (direction 1) or remove (direction -1) the words of some chunks, the '' row first.
CREATE OR REPLACE FUNCTION heron_doc_terms_count(searches tsvector[], direction integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(searches) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO doc_terms (lexeme, chunks) VALUES ('', direction * cardinality(searches))
    ON CONFLICT (lexeme) DO UPDATE SET chunks = doc_terms.chunks + EXCLUDED.chunks;
    INSERT INTO doc_terms (lexeme, chunks)
    SELECT w.lexeme, direction * count(*)
    FROM unnest(searches) AS s, unnest(tsvector_to_array(s)) AS w(lexeme)
    GROUP BY w.lexeme ORDER BY w.lexeme
    ON CONFLICT (lexeme) DO UPDATE SET chunks = doc_terms.chunks + EXCLUDED.chunks;
    IF direction < 0 THEN
        DELETE FROM doc_terms AS t
        USING unnest(searches) AS s, unnest(tsvector_to_array(s)) AS w(lexeme)
        WHERE t.lexeme = w.lexeme AND t.chunks <= 0;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION heron_doc_terms_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM heron_doc_terms_count(ARRAY(SELECT search FROM new_chunks), 1);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION heron_doc_terms_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM heron_doc_terms_count(ARRAY(SELECT search FROM old_chunks), -1);
    RETURN NULL;
END $$;

-- Heron never rewrites a chunk's text (a changed passage is a new chunk), but a manual
-- UPDATE must not leave the counts wrong.
CREATE OR REPLACE FUNCTION heron_doc_terms_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM heron_doc_terms_count(ARRAY(
        SELECT o.search FROM old_chunks AS o JOIN new_chunks AS n USING (id)
        WHERE o.search IS DISTINCT FROM n.search), -1);
    PERFORM heron_doc_terms_count(ARRAY(
        SELECT n.search FROM old_chunks AS o JOIN new_chunks AS n USING (id)
        WHERE o.search IS DISTINCT FROM n.search), 1);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION heron_doc_terms_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM doc_terms WHERE lexeme <> '';
    UPDATE doc_terms SET chunks = 0 WHERE lexeme = '';
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS doc_terms_insert ON doc_chunks;
CREATE TRIGGER doc_terms_insert AFTER INSERT ON doc_chunks
    REFERENCING NEW TABLE AS new_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION heron_doc_terms_insert();
DROP TRIGGER IF EXISTS doc_terms_delete ON doc_chunks;
CREATE TRIGGER doc_terms_delete AFTER DELETE ON doc_chunks
    REFERENCING OLD TABLE AS old_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION heron_doc_terms_delete();
DROP TRIGGER IF EXISTS doc_terms_update ON doc_chunks;
CREATE TRIGGER doc_terms_update AFTER UPDATE ON doc_chunks
    REFERENCING OLD TABLE AS old_chunks NEW TABLE AS new_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION heron_doc_terms_update();

DROP TRIGGER IF EXISTS doc_terms_truncate ON doc_chunks;
CREATE TRIGGER doc_terms_truncate AFTER TRUNCATE ON doc_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION heron_doc_terms_truncate();

-- Count what was ingested before this migration.
DELETE FROM doc_terms;
SELECT heron_doc_terms_count(ARRAY(SELECT search FROM doc_chunks), 1);
