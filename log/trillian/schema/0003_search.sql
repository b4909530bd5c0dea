-- Version 3: the search index (GET /v1/search). One row per term of each
-- entry's summary (log.Summary.Terms, a 31-bit hash of a field and its
-- value), written in the transaction that stores the checkpoint first
-- covering the entry: no row names an entry a stored checkpoint does not
-- cover, and every covered entry has its rows.
CREATE TABLE IF NOT EXISTS govlog_search (
	tree_id    BIGINT NOT NULL,
	term       BIGINT NOT NULL,
	leaf_index BIGINT NOT NULL,
	PRIMARY KEY (tree_id, term, leaf_index)
) ENGINE=InnoDB;
