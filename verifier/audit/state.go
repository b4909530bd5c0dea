package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// State is what an audit remembers for the next one, so that it only
// fetches and checks what is new: the last audited checkpoint, the compact
// range of its tree (the hashes of at most 64 perfect subtrees, from which
// the next root is computed), every id logged (to find repeats and to
// resolve lineage links into the audited part), the sequence numbers of
// each submitter (to report gaps), running totals, and the failures found
// so far (an audit keeps failing once it has found one).
//
// An State is produced by Audit.Finish and by UnmarshalState,
// which verifies it (the checkpoint signature, and that the compact range
// hashes to the checkpoint's root). It is not safe for concurrent use.
//
// # Encoding
//
// MarshalBinary writes
//
//	govlog-audit-state/v1\n
//	<uint32 big-endian length><JSON header: origin, checkpoint note, compact range, …>
//	<the id table: 32-byte records sorted by key>
//	<SHA-256 of everything above>
//
// An id table record is the first 16 bytes of SHA-256(kind ‖ id) (kind 1
// for a decision, 2 for an execution report), the entry's index (uint64
// big-endian) and, for an allow decision, its authorized_until in Unix
// seconds (int64 big-endian; 0 otherwise). A log of a million entries has
// a state of about 32 MB, which is read and searched in place.
type State struct {
	cp     log.Checkpoint
	hashes [][]byte // the compact range [0, cp.Size)
	ids    []byte   // sorted records
	// added holds records not merged into ids yet: the merge (a sort) is
	// done when the table is needed, not by every audit.
	added  map[idKey]idRecord
	seqs   map[string]*seqSet
	totals Totals
	// failures holds the first failures ever found (at most maxProblems),
	// failureCount all of them.
	failures     []Problem
	failureCount uint64
}

// stateMagic starts an encoded State.
const stateMagic = "govlog-audit-state/v1\n"

// recordSize is the size of one id table record.
const recordSize = 32

// table returns the sorted id table, merging what was added.
func (s *State) table() []byte {
	if len(s.added) > 0 {
		s.ids = mergeTable(s.ids, s.added)
		s.added = nil
	}
	return s.ids
}

// Checkpoint returns the last audited checkpoint.
func (s *State) Checkpoint() log.Checkpoint { return s.cp }

// Totals returns the running totals of every audited entry.
func (s *State) Totals() Totals { return s.totals }

// stateHeader is the JSON part of an encoded State.
type stateHeader struct {
	Origin       string                 `json:"origin"`
	Checkpoint   string                 `json:"checkpoint"`
	Range        [][]byte               `json:"range"`
	IDs          uint64                 `json:"ids"`
	Sequences    map[string][][2]uint64 `json:"sequences"`
	Totals       Totals                 `json:"totals"`
	Failures     []Problem              `json:"failures"`
	FailureCount uint64                 `json:"failure_count"`
}

// MarshalBinary encodes the state (see State).
func (s *State) MarshalBinary() ([]byte, error) {
	h := stateHeader{
		Origin:       s.cp.Origin,
		Checkpoint:   string(s.cp.Note),
		Range:        s.hashes,
		IDs:          uint64(len(s.table()) / recordSize),
		Sequences:    make(map[string][][2]uint64, len(s.seqs)),
		Totals:       s.totals,
		Failures:     s.failures,
		FailureCount: s.failureCount,
	}
	for sub, set := range s.seqs {
		h.Sequences[sub] = set.iv
	}
	hdr, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the audit state: %w", err)
	}
	out := make([]byte, 0, len(stateMagic)+4+len(hdr)+len(s.ids)+sha256.Size)
	out = append(out, stateMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(hdr)))
	out = append(out, hdr...)
	out = append(out, s.ids...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// UnmarshalState decodes a state written by MarshalBinary and
// verifies it: its checkpoint must be signed by logKey, its compact range
// must hash to the checkpoint's root, and its counts (totals, ids,
// failures) and sequence intervals must be those an audit can leave.
func UnmarshalState(data []byte, logKey note.Verifier) (*State, error) {
	bad := func(format string, args ...any) (*State, error) {
		return nil, fmt.Errorf("failed to read the audit state: "+format, args...)
	}
	if len(data) < len(stateMagic)+4+sha256.Size || !bytes.HasPrefix(data, []byte(stateMagic)) {
		return bad("not a govlog audit state")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return bad("the file is corrupt (checksum mismatch)")
	}
	rest := body[len(stateMagic):]
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(n) > uint64(len(rest)) {
		return bad("truncated header")
	}
	var h stateHeader
	dec := json.NewDecoder(bytes.NewReader(rest[:n]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return bad("%w", err)
	}
	if dec.InputOffset() != int64(n) {
		return bad("data after the header")
	}
	ids := rest[n:]
	if len(ids)%recordSize != 0 || uint64(len(ids)/recordSize) != h.IDs {
		return bad("the id table holds %d bytes, want %d records", len(ids), h.IDs)
	}
	for i := recordSize; i < len(ids); i += recordSize {
		if bytes.Compare(ids[i-recordSize:i-recordSize+16], ids[i:i+16]) >= 0 {
			return bad("the id table is not sorted")
		}
	}
	cp, err := verifier.Checkpoint([]byte(h.Checkpoint), logKey)
	if err != nil {
		return bad("its checkpoint does not verify with the log key: %w", err)
	}
	rng, err := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewRange(0, cp.Size, h.Range)
	if err != nil {
		return bad("bad compact range: %w", err)
	}
	if root := rangeRoot(rng); root != cp.Hash {
		return bad("its compact range does not hash to its checkpoint's root")
	}
	// What an audit of the checkpoint's entries adds up to.
	if t := h.Totals; t.Entries != cp.Size || t.Decisions > t.Entries || t.Executions > t.Entries-t.Decisions ||
		t.Allows > t.Decisions || t.Denies != t.Decisions-t.Allows || h.IDs > cp.Size {
		return bad("its totals %+v and %d ids do not add up to the %d entries of its checkpoint", t, h.IDs, cp.Size)
	}
	if h.FailureCount < uint64(len(h.Failures)) {
		return bad("it counts %d failures and lists %d", h.FailureCount, len(h.Failures))
	}
	s := &State{cp: cp, hashes: h.Range, ids: ids, seqs: make(map[string]*seqSet, len(h.Sequences)),
		totals: h.Totals, failures: h.Failures, failureCount: h.FailureCount}
	for sub, iv := range h.Sequences {
		set := &seqSet{iv: iv}
		if !set.valid() {
			return bad("bad sequence intervals for %q", sub)
		}
		s.seqs[sub] = set
	}
	return s, nil
}

// rangeRoot is the root hash of a compact range that begins at 0.
func rangeRoot(rng *compact.Range) [32]byte {
	if rng.End() == 0 {
		return log.EmptyRoot
	}
	root, err := rng.GetRootHash(nil)
	if err != nil || len(root) != 32 {
		return [32]byte{}
	}
	return [32]byte(root)
}

// idKey identifies a (kind, id) pair in the id table.
type idKey [16]byte

func keyOf(kind log.Kind, id string) idKey {
	h := sha256.New()
	h.Write([]byte{byte(kind)})
	h.Write([]byte(id))
	var sum [32]byte
	return idKey(h.Sum(sum[:0])[:16])
}

// idRecord is what the id table holds for an id.
type idRecord struct {
	index uint64
	until int64 // authorized_until (Unix seconds) of an allow decision, else 0
}

// lookup finds a key in a sorted id table.
func lookupTable(table []byte, k idKey) (idRecord, bool) {
	n := len(table) / recordSize
	i := sort.Search(n, func(i int) bool { return bytes.Compare(table[i*recordSize:i*recordSize+16], k[:]) >= 0 })
	if i == n {
		return idRecord{}, false
	}
	r := table[i*recordSize : (i+1)*recordSize]
	if !bytes.Equal(r[:16], k[:]) {
		return idRecord{}, false
	}
	return idRecord{index: binary.BigEndian.Uint64(r[16:]), until: int64(binary.BigEndian.Uint64(r[24:]))}, true
}

// compareKeys orders keys as bytes.Compare does, as two big-endian words.
func compareKeys(a, b idKey) int {
	if x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); x != y {
		if x < y {
			return -1
		}
		return 1
	}
	x, y := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// mergeTable returns the sorted table of old and the records of add, whose
// keys are not in old.
func mergeTable(old []byte, add map[idKey]idRecord) []byte {
	keys := make([]idKey, 0, len(add))
	for k := range add {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	out := make([]byte, 0, len(old)+len(keys)*recordSize)
	put := func(k idKey, r idRecord) {
		out = append(out, k[:]...)
		out = binary.BigEndian.AppendUint64(out, r.index)
		out = binary.BigEndian.AppendUint64(out, uint64(r.until))
	}
	for _, k := range keys {
		// Copy the old records that sort before k, in one go.
		n := len(old) / recordSize
		i := sort.Search(n, func(i int) bool { return bytes.Compare(old[i*recordSize:i*recordSize+16], k[:]) >= 0 })
		out = append(out, old[:i*recordSize]...)
		old = old[i*recordSize:]
		put(k, add[k])
	}
	return append(out, old...)
}

// seqSet is a set of sequence numbers as sorted, disjoint, non-adjacent
// closed intervals.
type seqSet struct {
	iv [][2]uint64
}

// add adds n and reports whether it was already there.
func (s *seqSet) add(n uint64) (dup bool) {
	// The common case: numbers in increasing order.
	if k := len(s.iv); k > 0 && s.iv[k-1][1] < n {
		if s.iv[k-1][1]+1 == n {
			s.iv[k-1][1] = n
		} else {
			s.iv = append(s.iv, [2]uint64{n, n})
		}
		return false
	}
	// i is the first interval that ends at or after n.
	i := sort.Search(len(s.iv), func(i int) bool { return s.iv[i][1] >= n })
	if i < len(s.iv) && s.iv[i][0] <= n {
		return true
	}
	joinLeft := i > 0 && s.iv[i-1][1]+1 == n
	joinRight := i < len(s.iv) && s.iv[i][0] == n+1
	switch {
	case joinLeft && joinRight:
		s.iv[i-1][1] = s.iv[i][1]
		s.iv = slices.Delete(s.iv, i, i+1)
	case joinLeft:
		s.iv[i-1][1] = n
	case joinRight:
		s.iv[i][0] = n
	default:
		s.iv = slices.Insert(s.iv, i, [2]uint64{n, n})
	}
	return false
}

// has reports whether n is in the set.
func (s *seqSet) has(n uint64) bool {
	i := sort.Search(len(s.iv), func(i int) bool { return s.iv[i][1] >= n })
	return i < len(s.iv) && s.iv[i][0] <= n
}

func (s *seqSet) valid() bool {
	for i, v := range s.iv {
		if v[0] < 1 || v[0] > v[1] || (i > 0 && s.iv[i-1][1] >= v[0]-1) {
			return false
		}
	}
	return true
}

func (s *seqSet) clone() *seqSet { return &seqSet{iv: slices.Clone(s.iv)} }

// gaps returns the missing ranges between 1 and the highest number.
func (s *seqSet) gaps() (missing [][2]uint64, count uint64) {
	prev := uint64(0)
	for _, v := range s.iv {
		if v[0] > prev+1 {
			missing = append(missing, [2]uint64{prev + 1, v[0] - 1})
			count += v[0] - 1 - prev
		}
		prev = v[1]
	}
	return missing, count
}

// errStateKey is returned when a state does not belong to the log audited.
var errStateKey = errors.New("the audit state is of another log")
