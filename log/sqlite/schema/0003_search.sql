-- Schema version 3: the search index (GET /v1/search). Each entry has one
-- row per term of its summary (log.Summary.Terms: subject, action,
-- resource, outcome, policy, the parent a decision names, the decision an
-- execution or revocation names, violation, the kind of non-decisions, and
-- the hour, minute and second of logged_at), written in the transaction
-- that appends the entry.
-- A term is a 31-bit hash of a field and its value: the index holds no
-- copy of the strings, and every candidate is confirmed against its leaf.
--
-- rng keys a posting first, so that a batch's postings land on a few pages
-- rather than on a page per term all over the table. For a field term
-- (log.Summary.FieldTerms) an append writes 2^40 + index >> 8: chunks of
-- 256 entries at the end of the table; the append that fills a range of
-- 16,384 entries rewrites its chunks, in term order, as rng = index >> 14.
-- For a time term (log.Summary.TimeTerms) rng is -1: the entries appended
-- together share their time buckets, whose postings are together already,
-- and a time-only search reads each bucket with one seek.
CREATE TABLE search_terms (
	rng  INTEGER NOT NULL,
	term INTEGER NOT NULL,
	idx  INTEGER NOT NULL,
	PRIMARY KEY (rng, term, idx)
) WITHOUT ROWID;

-- How many entries (from index 0) the search index covers. Appends keep it
-- equal to the tree size; a log created before version 3 is indexed by
-- Open, in chunks, from here.
CREATE TABLE search_indexed (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size INTEGER NOT NULL
);
INSERT INTO search_indexed (id, size) VALUES (1, 0);
