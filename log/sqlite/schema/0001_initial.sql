-- Schema version 1 of the govlog SQLite backend. See the package comment
-- for what each table holds. Integers are SQLite INTEGERs (signed 64-bit):
-- indices and sizes stay far below 2^63.

-- The leaves, by index.
CREATE TABLE entries (
	idx  INTEGER PRIMARY KEY,
	leaf BLOB NOT NULL
);

-- RFC 6962 node hashes as C2SP tlog-tiles hash tiles of height 8: tile
-- (level, idx) holds the hashes of the Merkle nodes at tree level 8*level,
-- indices 256*idx .. 256*idx+255, 32 bytes each. A partial tile is the
-- prefix of the full tile and grows in place.
CREATE TABLE tiles (
	level  INTEGER NOT NULL,
	idx    INTEGER NOT NULL,
	hashes BLOB    NOT NULL,
	PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- The id index: kind 1 is a decision, 2 an execution report; allow is 1
-- for an allow decision (executions may only name those).
CREATE TABLE ids (
	kind  INTEGER NOT NULL,
	id    TEXT    NOT NULL,
	idx   INTEGER NOT NULL,
	allow INTEGER NOT NULL,
	PRIMARY KEY (kind, id)
) WITHOUT ROWID;

-- Decisions with a non-zero sequence, per submitter.
CREATE TABLE sequences (
	submitter TEXT    NOT NULL,
	sequence  INTEGER NOT NULL,
	idx       INTEGER NOT NULL,
	PRIMARY KEY (submitter, sequence)
) WITHOUT ROWID;

-- The leaf-hash index: the first 8 bytes of the RFC 6962 leaf hash as a
-- big-endian signed integer. Candidates are confirmed against the full hash
-- in the level-0 tile.
CREATE TABLE leaf_hashes (
	prefix INTEGER NOT NULL,
	idx    INTEGER NOT NULL,
	PRIMARY KEY (prefix, idx)
) WITHOUT ROWID;

-- Every signed checkpoint, one per committed batch, keyed by tree size.
CREATE TABLE checkpoints (
	size INTEGER PRIMARY KEY,
	note BLOB NOT NULL
);

-- One row rewritten by the health probe (Ready after a failure) to check
-- that a write transaction commits.
CREATE TABLE probe (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	at INTEGER NOT NULL
);
