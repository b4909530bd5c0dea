-- Schema version 1 of the govlog witness state. Sizes are SQLite INTEGERs
-- (signed 64-bit): the witness refuses checkpoints of 2^63 entries or more.

-- One row per log origin the witness was ever configured for: the latest
-- checkpoint it cosigned (size 0 and the empty root until the first one).
-- Rows are only ever changed by a compare-and-swap on (size, hash), so a
-- witness can never roll a log back, and never deleted, so a log removed
-- from the configuration and added back later resumes from its old state.
CREATE TABLE logs (
	origin     TEXT    PRIMARY KEY,
	size       INTEGER NOT NULL CHECK (size >= 0),
	hash       BLOB    NOT NULL CHECK (length(hash) = 32),
	-- The cosigned checkpoint: the log's note with the log signatures the
	-- witness verified and its own cosignature; NULL until the first one.
	checkpoint BLOB,
	-- When the row last changed, Unix seconds.
	updated_at INTEGER NOT NULL
) STRICT;
