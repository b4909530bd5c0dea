-- Schema version 1 of the cosigned checkpoint store of govlogd. Sizes are
-- SQLite INTEGERs (signed 64-bit).

-- The checkpoints whose cosignatures satisfied the witness policy, with the
-- cosignatures they had at that moment. Rows are only ever inserted, in
-- increasing size: the first row whose size is greater than an entry's
-- index is the checkpoint of that entry's receipt in witness sync mode, so
-- a resubmission gets the same receipt, even after a restart.
CREATE TABLE cosigned (
	size      INTEGER PRIMARY KEY CHECK (size > 0),
	hash      BLOB    NOT NULL CHECK (length(hash) = 32),
	note      BLOB    NOT NULL,
	-- When the policy was satisfied, Unix seconds.
	stored_at INTEGER NOT NULL
) STRICT;
