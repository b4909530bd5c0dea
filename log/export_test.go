package log

// CanonicalJSON reads a JSON object as the Parse functions do, in one pass,
// and returns its RFC 8785 form: the tests compare it with other JCS
// implementations on any object, not only on decisions.
func CanonicalJSON(body []byte) ([]byte, error) {
	c := newCanonicalizer(body, nil)
	defer c.release()
	if !c.document(nil) {
		return nil, c.err
	}
	return c.out, nil
}

// Queued is the number of submissions waiting in the sequencer's queue.
func (l *Log) Queued() int64 { return l.queued.Load() }

// OwnSummary is the Summary EntryTerms takes from e's submission, ok
// false when it reads leaf instead.
func (e *Entry) OwnSummary(leaf []byte) (Summary, bool) { return e.ownSummary(leaf) }
