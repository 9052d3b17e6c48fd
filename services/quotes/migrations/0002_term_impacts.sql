-- An impact-ordered index for one-word searches. Ranking the matches of a common word through
-- the GIN index means fetching every matching row to compute ts_rank (tens of thousands of heap
-- pages: ~200 ms at a million quotes). Here each (word, quote) pair carries that rank, computed
-- once when the quote is stored, so the best matches of a word are the first entries of a b-tree
-- range and its number of quotes is one row of term_stat.

-- The tsquery of one lexeme, quoted as tsquery input wants it.
CREATE FUNCTION lexeme_query(lexeme text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''')::tsquery;

CREATE TABLE quote_term (
    lexeme text NOT NULL,
    -- ts_rank(quote.search, lexeme_query(lexeme)): the rank of the quote for a one-word query.
    score real NOT NULL,
    quote_id bigint NOT NULL
);

CREATE TABLE term_stat (
    lexeme text CONSTRAINT term_stat_pk PRIMARY KEY,
    quotes integer NOT NULL,
    CONSTRAINT term_stat_quotes_nonnegative CHECK (quotes >= 0)
);

INSERT INTO quote_term (lexeme, score, quote_id)
SELECT t.lexeme, ts_rank(quote.search, lexeme_query(t.lexeme)), quote.id
FROM quote, unnest(quote.search) AS t;

INSERT INTO term_stat (lexeme, quotes)
SELECT lexeme, count(*) FROM quote_term GROUP BY lexeme;

CREATE UNIQUE INDEX quote_term_rank_ix ON quote_term (lexeme, score DESC, quote_id DESC);

-- Kept in step by triggers, so every writer (API, import, collector) keeps them right. Writers
-- of quote are serialised by quote_counter's row lock, so term_stat's hot rows see no contention.
CREATE FUNCTION quote_term_add() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO quote_term (lexeme, score, quote_id)
    SELECT t.lexeme, ts_rank(inserted.search, lexeme_query(t.lexeme)), inserted.id
    FROM inserted, unnest(inserted.search) AS t;
    INSERT INTO term_stat AS s (lexeme, quotes)
    SELECT t.lexeme, count(*) FROM inserted, unnest(inserted.search) AS t GROUP BY t.lexeme
    ON CONFLICT (lexeme) DO UPDATE SET quotes = s.quotes + excluded.quotes;
    RETURN NULL;
END
$$;

CREATE FUNCTION quote_term_remove() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM quote_term
    USING removed, unnest(removed.search) AS t
    WHERE quote_term.lexeme = t.lexeme
      AND quote_term.score = ts_rank(removed.search, lexeme_query(t.lexeme))
      AND quote_term.quote_id = removed.id;
    UPDATE term_stat AS s SET quotes = s.quotes - gone.quotes
    FROM (SELECT t.lexeme, count(*) AS quotes
          FROM removed, unnest(removed.search) AS t GROUP BY t.lexeme) AS gone
    WHERE s.lexeme = gone.lexeme;
    RETURN NULL;
END
$$;

CREATE TRIGGER quote_term_add AFTER INSERT ON quote
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION quote_term_add();

CREATE TRIGGER quote_term_remove AFTER DELETE ON quote
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION quote_term_remove();
