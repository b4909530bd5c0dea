-- Schema version 4: the id and leaf-hash indexes keyed by run first.
--
-- Each merge of the held-back rows (pendingIDs, pendingHashes) writes one
-- run: the rows of the entries [run, upto), run being the first of them,
-- sorted within it. The run keys every row first, so a merge appends its
-- rows at the end of the B-tree, in order, a page at a time, instead of
-- dirtying about one page of a B-tree of every key per row. A lookup
-- probes only the runs whose filter (a split-block Bloom filter of the
-- run's keys, in the run's row of id_runs or hash_runs) may hold the key.
-- The runs of an index cover [0, upto of the last run): the entries after
-- it have their rows in memory, read from their leaves by Open.
--
-- (kind, id) is no longer a key of ids: only (run, kind, id) is. That an
-- id is stored once is stood for by the appends (the rule book looks every
-- id up in the pending rows and in every run whose filter may hold it) and
-- checked by govlog fsck.

-- The salt of the filters' hash (so that no input can aim at a block) and
-- the 256-bit blocks of each filter slot (a run of more keys than a slot
-- holds takes several slots).
CREATE TABLE run_filters (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	salt   BLOB    NOT NULL,
	blocks INTEGER NOT NULL
);
INSERT INTO run_filters (id, salt, blocks) VALUES (1, randomblob(16), 2048);

CREATE TABLE ids_v4 (
	run   INTEGER NOT NULL,
	kind  INTEGER NOT NULL,
	id    TEXT    NOT NULL,
	idx   INTEGER NOT NULL,
	allow INTEGER NOT NULL,
	PRIMARY KEY (run, kind, id)
) WITHOUT ROWID;
-- The rows of version 3 form runs of 16,384 entries.
INSERT INTO ids_v4 (run, kind, id, idx, allow)
	SELECT (idx >> 14) << 14, kind, id, idx, allow FROM ids ORDER BY 1, 2, 3;
DROP TABLE ids;
ALTER TABLE ids_v4 RENAME TO ids;

CREATE TABLE leaf_hashes_v4 (
	run    INTEGER NOT NULL,
	prefix INTEGER NOT NULL,
	idx    INTEGER NOT NULL,
	PRIMARY KEY (run, prefix, idx)
) WITHOUT ROWID;
INSERT INTO leaf_hashes_v4 (run, prefix, idx)
	SELECT (idx >> 14) << 14, prefix, idx FROM leaf_hashes ORDER BY 1, 2, 3;
DROP TABLE leaf_hashes;
ALTER TABLE leaf_hashes_v4 RENAME TO leaf_hashes;

-- The runs of each index: the entries [run, upto) and the filter of their
-- keys, NULL for a run migrated from version 3 until Open builds it.
CREATE TABLE id_runs (
	run    INTEGER PRIMARY KEY,
	upto   INTEGER NOT NULL,
	filter BLOB
);
INSERT INTO id_runs (run, upto, filter) SELECT run, max(idx) + 1, NULL FROM ids GROUP BY run;
CREATE TABLE hash_runs (
	run    INTEGER PRIMARY KEY,
	upto   INTEGER NOT NULL,
	filter BLOB
);
INSERT INTO hash_runs (run, upto, filter) SELECT run, max(idx) + 1, NULL FROM leaf_hashes GROUP BY run;
