package log

// SearchResult is one entry of a search answer (wire contract §4,
// GET /v1/search): what the server's index says of it, not verified.
type SearchResult struct {
	Index      uint64 `json:"index"`
	Kind       string `json:"kind"`
	ID         string `json:"id"`
	LoggedAt   string `json:"logged_at"`
	Outcome    string `json:"outcome,omitempty"`
	Subject    string `json:"subject,omitempty"`
	Action     string `json:"action,omitempty"`
	Resource   string `json:"resource,omitempty"`
	DecisionID string `json:"decision_id,omitempty"`
	Status     string `json:"status,omitempty"`
	Violation  string `json:"violation,omitempty"`
}

// NewSearchResult returns the search result of the entry at index, whose
// summary is s.
func NewSearchResult(index uint64, s *Summary) SearchResult {
	return SearchResult{Index: index, Kind: s.Kind, ID: s.ID, LoggedAt: s.LoggedAt.Format(LoggedAtLayout),
		Outcome: s.Outcome, Subject: s.Subject, Action: s.Action, Resource: s.Resource,
		DecisionID: s.DecisionID, Status: s.Status, Violation: s.Violation}
}

// SearchPage is one page of a search answer: Next is the cursor of the
// next page (the after parameter), "" on the last page.
type SearchPage struct {
	Results []SearchResult `json:"results"`
	Next    string         `json:"next,omitempty"`
}
