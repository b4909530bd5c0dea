-- Schema version 3: the search index (GET /v1/search). (Superseded by
-- 0005_postings.sql, which drops search_terms for search_postings, a few
-- rows a range holding its postings delta-coded; search_indexed stays.)
-- Each entry has one
-- row per term of its summary (log.Summary.Terms: subject, action,
-- resource, outcome, policy, the parent a decision names, the decision an
-- execution or revocation names, violation, the kind of non-decisions, and
-- the hour, minute and second of logged_at), written in the transaction
-- of the append that fills the entry's range of 16,384 entries (below).
-- A term is a 31-bit hash of a field and its value: the index holds no
-- copy of the strings, and every candidate is confirmed against its leaf.
--
-- rng keys a posting first, so that the postings of a range of 16,384
-- entries are written together, in key order, and a search probes the
-- ranges in index order. For a field term (log.Summary.FieldTerms) rng is
-- index >> 14; for a time term (log.Summary.TimeTerms) it is -1: the
-- entries of a range share their time buckets, whose postings are
-- together already, and a time-only search reads each bucket with one
-- seek. Only full ranges are stored: the postings of the last, partial
-- range are held in memory and read from the entries when the log is
-- opened; the append that fills a range writes its postings in its
-- transaction. (Logs written before that held the partial range's field
-- postings in chunks of 256 entries, rng = 2^40 + index >> 8: opening
-- such a log deletes them.)
CREATE TABLE search_terms (
	rng  INTEGER NOT NULL,
	term INTEGER NOT NULL,
	idx  INTEGER NOT NULL,
	PRIMARY KEY (rng, term, idx)
) WITHOUT ROWID;

-- How many entries (from index 0) the search index stores: the tree size
-- rounded down to a multiple of 16,384 (the full ranges). A log created
-- before version 3 is indexed by Open, a range at a time, from here.
CREATE TABLE search_indexed (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size INTEGER NOT NULL
);
INSERT INTO search_indexed (id, size) VALUES (1, 0);
