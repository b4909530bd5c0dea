-- Schema version 2: what the rule book needs of each allow decision
-- (log.Authorization), written when the allow is appended and updated as
-- claims are accepted and revocations logged. Times are Unix nanoseconds
-- (decided_at) and seconds (authorized_until); leaf_hash is the RFC 6962
-- leaf hash of the decision's entry. Allows logged before version 2 have
-- no row: the rule book reads them from their leaves (no uses, not
-- revoked), and the first claim or revocation writes their row.
CREATE TABLE authorizations (
	decision_id      TEXT    NOT NULL PRIMARY KEY,
	decided_at       INTEGER NOT NULL,
	authorized_until INTEGER NOT NULL,
	max_executions   INTEGER NOT NULL,
	executor         TEXT    NOT NULL,
	leaf_hash        BLOB    NOT NULL,
	uses             INTEGER NOT NULL,
	revoked          INTEGER NOT NULL,
	-- The accepted claims and revocations, "KIND:ID" lines in log order
	-- (log.Authorization.EncodeEntries).
	entries          TEXT    NOT NULL
) WITHOUT ROWID;
