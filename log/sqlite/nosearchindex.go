//go:build govlog_nosearchindex

package sqlite

// buildNoSearchIndex makes every log opened by this build write no search
// postings (testHooks.noSearchIndex), and refuse searches. It exists only
// to measure, at the service, what the search index costs an append:
//
//	go build -tags govlog_nosearchindex ./cmd/govlogd
//
// Such a binary is never shipped. A log it appended to has entries
// without postings; the next Open by a normal build indexes them (reindex).
const buildNoSearchIndex = true
