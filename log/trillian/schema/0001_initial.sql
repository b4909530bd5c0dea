-- Version 1 of govlog's own tables, kept in the MySQL/MariaDB database of
-- Trillian (next to Trillian's tables). Every row belongs to one Trillian
-- log tree (tree_id), so one database can hold several logs. The package
-- comment says what each table is for and why its keys make racing
-- replicas safe. Every statement is idempotent: replicas may apply it
-- concurrently.

-- One row per tree: replicas lock it (SELECT ... FOR UPDATE) to store
-- checkpoints one at a time, in increasing size.
CREATE TABLE IF NOT EXISTS govlog_trees (
	tree_id BIGINT NOT NULL,
	PRIMARY KEY (tree_id)
) ENGINE=InnoDB;

-- The id index and reservation of every decision (kind 1) and execution
-- report (kind 2): the leaf that holds it, its RFC 6962 leaf hash, whether
-- a decision is an allow, and its index in the tree once known (NULL
-- while it is reserved but not yet covered by a stored checkpoint).
CREATE TABLE IF NOT EXISTS govlog_ids (
	tree_id    BIGINT           NOT NULL,
	kind       TINYINT UNSIGNED NOT NULL,
	id         VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	leaf       MEDIUMBLOB       NOT NULL,
	leaf_hash  BINARY(32)       NOT NULL,
	allow      BOOLEAN          NOT NULL,
	leaf_index BIGINT           NULL,
	PRIMARY KEY (tree_id, kind, id)
) ENGINE=InnoDB;

-- Decisions with a non-zero sequence, keyed by SHA-256 of the submitter.
CREATE TABLE IF NOT EXISTS govlog_sequences (
	tree_id        BIGINT          NOT NULL,
	submitter_hash BINARY(32)      NOT NULL,
	sequence       BIGINT UNSIGNED NOT NULL,
	id             VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	PRIMARY KEY (tree_id, submitter_hash, sequence)
) ENGINE=InnoDB;

-- Every checkpoint govlog signed for the tree, by size: at most one per
-- size, stored in increasing size order.
CREATE TABLE IF NOT EXISTS govlog_checkpoints (
	tree_id   BIGINT          NOT NULL,
	size      BIGINT UNSIGNED NOT NULL,
	root_hash BINARY(32)      NOT NULL,
	note      BLOB            NOT NULL,
	PRIMARY KEY (tree_id, size)
) ENGINE=InnoDB;
