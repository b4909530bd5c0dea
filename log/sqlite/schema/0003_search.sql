-- Schema version 3: the search index (GET /v1/search). Each entry has one
-- row per term of its summary (log.Summary.Terms: subject, action,
-- resource, outcome, policy, the decision an execution or revocation
-- names, violation, the hour of logged_at, the kind of non-decisions),
-- written in the transaction that appends the entry. A term is a 31-bit hash of a field and its
-- value: the index holds no copy of the strings, and every candidate is
-- confirmed against its leaf.
CREATE TABLE search_terms (
	term INTEGER NOT NULL,
	idx  INTEGER NOT NULL,
	PRIMARY KEY (term, idx)
) WITHOUT ROWID;

-- How many entries (from index 0) the search index covers. Appends keep it
-- equal to the tree size; a log created before version 3 is indexed by
-- Open, in chunks, from here.
CREATE TABLE search_indexed (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size INTEGER NOT NULL
);
INSERT INTO search_indexed (id, size) VALUES (1, 0);
