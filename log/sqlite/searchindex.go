//go:build !govlog_nosearchindex

package sqlite

// buildNoSearchIndex is false in every build but one made for measuring
// what the search index costs (see nosearchindex.go).
const buildNoSearchIndex = false
