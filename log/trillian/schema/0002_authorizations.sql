-- Version 2: what the rule book needs of each allow decision
-- (log.Authorization), inserted with the allow's reservation and updated
-- with the reservation of each accepted claim and revocation. Appends lock
-- the rows of the decisions a batch names (SELECT ... FOR UPDATE) before
-- they judge it, so that replicas claiming one authorization at once are
-- judged one after the other: its uses never exceed max_executions.
-- decided_at is in Unix nanoseconds, authorized_until in Unix seconds.
CREATE TABLE IF NOT EXISTS govlog_authorizations (
	tree_id          BIGINT        NOT NULL,
	decision_id      VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	decided_at       BIGINT        NOT NULL,
	authorized_until BIGINT        NOT NULL,
	max_executions   INT           NOT NULL,
	executor         VARBINARY(1024) NOT NULL,
	leaf_hash        BINARY(32)    NOT NULL,
	uses             INT           NOT NULL,
	revoked          BOOLEAN       NOT NULL,
	entries          MEDIUMBLOB    NOT NULL,
	PRIMARY KEY (tree_id, decision_id)
) ENGINE=InnoDB;
