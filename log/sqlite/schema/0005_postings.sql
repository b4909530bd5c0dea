-- Schema version 5: the search postings of a range in few rows, delta-coded
-- (this supersedes the layout of search_terms in 0003_search.sql, whose
-- table it drops; search_indexed keeps its meaning).
--
-- The postings of a full range of 16,384 entries (rng = index >> 14) are
-- rows of search_postings, each a list of entries as their offsets in the
-- range (search.go, postings.go):
--
--   - the field terms' (log.Summary.FieldTerms) by bucket, 256 a range:
--     key = rng << 8 | term >> 23. The row lists the bucket's terms the
--     range's entries have, in increasing order, a group each: the term
--     as a uvarint delta from the one before, then its one offset (a
--     term of one entry: ~5 bytes), or the byte length of its list and
--     the list;
--   - the time terms' (log.Summary.TimeTerms) a row a term and range:
--     key = term << 24 | rng, less 2^56 (below the field rows), so that
--     a time bucket's rows are together, in range order.
--
-- A list is run-coded: each run of consecutive offsets as uvarint(gap <<
-- 1 | 1) and uvarint(length - 2), a lone offset as uvarint(gap << 1), the
-- gap from the end of the run before. The rows of a range follow from its
-- entries alone (Open rewrites the rows of a range whose merge a crash
-- interrupted with the same bytes; govlog fsck compares them byte for
-- byte). Only full ranges are stored: search_indexed entries, a range
-- less while the last full range is being written, a slice of its rows
-- in key order a commit; the postings of the entries after it are held
-- in memory and read from the entries when the log is opened.
--
-- The migration drops the old postings and sets search_indexed to 0:
-- Open then indexes the full ranges from the entries, a range per
-- transaction, resumable: 8-20 s a million entries on a two-core machine
-- (operations.md).
-- The old table's pages go to SQLite's free list and are reused as the
-- file grows; VACUUM returns them to the file system.
DROP TABLE search_terms;
CREATE TABLE search_postings (
	key  INTEGER PRIMARY KEY,
	list BLOB NOT NULL
);
UPDATE search_indexed SET size = 0 WHERE id = 1;
