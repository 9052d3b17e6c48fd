-- Quotes, where the collector saw them, the state of its sources, and the vocabulary that typo
-- tolerant search corrects words against.

-- pg_trgm is a trusted extension; it lives in `public` so every schema finds its operators.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- The dedupe key of a text: case and runs of white space do not count. A hash rather than the
-- normalised text itself, because a b-tree entry cannot hold a long quote.
CREATE FUNCTION quote_text_hash(body text) RETURNS uuid
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN md5(btrim(regexp_replace(lower(body), '\s+', ' ', 'g'), ' '))::uuid;

CREATE TABLE quote (
    id bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT quote_pk PRIMARY KEY,
    -- Dense 1..N (N = quote_counter.last_seq): a uniform random draw of distinct quotes is a draw
    -- of distinct integers. Inserts take the counter's row lock; a delete moves the last quote
    -- into the hole it leaves (see repository.py).
    seq integer NOT NULL CONSTRAINT quote_seq_uq UNIQUE,
    text text NOT NULL,
    author text,
    source text,
    added_at timestamptz NOT NULL DEFAULT now(),
    text_hash uuid GENERATED ALWAYS AS (quote_text_hash(text)) STORED
        CONSTRAINT quote_text_hash_uq UNIQUE,
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', text), 'A')
        || setweight(to_tsvector('english', coalesce(author, '')), 'B')
    ) STORED,
    CONSTRAINT quote_seq_positive CHECK (seq > 0),
    CONSTRAINT quote_text_length CHECK (char_length(text) BETWEEN 1 AND 10000),
    CONSTRAINT quote_author_length CHECK (char_length(author) <= 200),
    CONSTRAINT quote_source_length CHECK (char_length(source) <= 500)
);

CREATE INDEX quote_latest_ix ON quote (added_at DESC, id DESC);
CREATE INDEX quote_search_ix ON quote USING gin (search);

-- One row: the highest `seq` handed out. Its row lock serialises writers of `quote`.
CREATE TABLE quote_counter (
    singleton boolean CONSTRAINT quote_counter_pk PRIMARY KEY DEFAULT true,
    last_seq integer NOT NULL DEFAULT 0,
    CONSTRAINT quote_counter_singleton CHECK (singleton)
);
INSERT INTO quote_counter DEFAULT VALUES;

-- Every word (3–40 letters, lower case) of every quote: the words that a misspelt query word is
-- corrected to. Small next to the quotes, so a trigram search of it stays fast.
CREATE TABLE quote_word (
    word text CONSTRAINT quote_word_pk PRIMARY KEY
);
CREATE INDEX quote_word_trgm_ix ON quote_word USING gin (word public.gin_trgm_ops);

CREATE FUNCTION quote_word_collect() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO quote_word (word)
    SELECT DISTINCT m[1]
    FROM inserted, regexp_matches(lower(inserted.text), '([[:alpha:]]{3,40})', 'g') AS m
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER quote_word_collect AFTER INSERT ON quote
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION quote_word_collect();

-- Each time the collector found a quote on a source.
CREATE TABLE sighting (
    id bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT sighting_pk PRIMARY KEY,
    quote_id bigint NOT NULL CONSTRAINT sighting_quote_fk REFERENCES quote (id) ON DELETE CASCADE,
    source_name text NOT NULL,
    url text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sighting_quote_ix ON sighting (quote_id, seen_at);

-- The collector's view of each configured source, shared by every instance (one collects at a
-- time; any of them reports in /readyz).
CREATE TABLE source_status (
    name text CONSTRAINT source_status_pk PRIMARY KEY,
    url text NOT NULL,
    last_attempt_at timestamptz,
    last_success_at timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_error text,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);

-- One-time steps of `setup` that are done (the load of Debian's fortunes).
CREATE TABLE first_run_step (
    name text CONSTRAINT first_run_step_pk PRIMARY KEY,
    done_at timestamptz NOT NULL DEFAULT now()
);
