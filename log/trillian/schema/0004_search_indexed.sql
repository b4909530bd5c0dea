-- Version 4: how many entries of each tree, from index 0, the search index
-- covers: every entry below size has all its postings in govlog_search.
-- The transaction that stores a checkpoint advances it to the checkpoint's
-- size when it was the previous checkpoint's size; Open indexes the
-- entries from size to the latest checkpoint (backfill.go), a chunk per
-- transaction, and creates the row of a tree that has none with size 0.
CREATE TABLE IF NOT EXISTS govlog_search_indexed (
	tree_id BIGINT          NOT NULL,
	size    BIGINT UNSIGNED NOT NULL,
	PRIMARY KEY (tree_id)
) ENGINE=InnoDB;

-- The upgrade of the trees of a database at version 2 or 3. Since version
-- 3 the transaction that stores a checkpoint writes the postings of the
-- entries it is the first to cover, so a tree whose entry 0 has postings
-- was indexed from its first checkpoint on: the index covers its latest
-- checkpoint. Any other tree (created at version 2: no postings at all, or
-- postings only for the entries appended since version 3) starts at 0, and
-- Open indexes all of it (postings already there are kept). The EXISTS
-- reads the tree's postings until it meets one of entry 0 (once).
INSERT IGNORE INTO govlog_search_indexed (tree_id, size)
	SELECT t.tree_id,
		CASE WHEN EXISTS (SELECT 1 FROM govlog_search s WHERE s.tree_id = t.tree_id AND s.leaf_index = 0)
			THEN COALESCE((SELECT MAX(c.size) FROM govlog_checkpoints c WHERE c.tree_id = t.tree_id), 0)
			ELSE 0 END
	FROM govlog_trees t;
