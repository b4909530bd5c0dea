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
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// State is what an audit remembers for the next one, so that it only
// fetches and checks what is new, and judges the new entries exactly as a
// replay of the whole log would: the last audited checkpoint, the compact
// range of its tree (the hashes of at most 64 perfect subtrees, from which
// the next root is computed), every id logged (to find repeats and to
// resolve lineage links into the audited part), the authorization of every
// allow (what log.Judge's Facts hold of it), the decision each started
// report claims, the sequence numbers of each submitter (to report gaps),
// running totals, and the failures found so far (an audit keeps failing
// once it has found one).
//
// An State is produced by Audit.Finish and by UnmarshalState,
// which verifies it (the checkpoint signature, and that the compact range
// hashes to the checkpoint's root). It is not safe for concurrent use.
//
// # Encoding
//
// MarshalBinary writes
//
//	govlog-audit-state/v2\n
//	<uint32 big-endian length><JSON header: origin, checkpoint note, compact range, executors, …>
//	<the id table: 32-byte records sorted by key>
//	<the authorization table: 48-byte records sorted by key>
//	<the claim table: 32-byte records sorted by key>
//	<SHA-256 of everything above>
//
// An id table record is the first 16 bytes of SHA-256(kind ‖ id) (kind 1
// for a decision, 2 for an execution report, 3 for a revocation, 4 for a
// key), the entry's index (uint64 big-endian) and, for an allow decision,
// its authorized_until in Unix seconds (int64 big-endian; 0 otherwise).
//
// An authorization table record is what the rule book knows of an allow
// the log appended (log.Authorization): the decision's key (as in the id
// table), its decided_at (Unix seconds, int64, and nanoseconds, uint32),
// max_executions and uses (uint16 each), its executor (uint32: 0 for none,
// else 1 + its position in the header's executors), the violations
// recorded in reports on it (uint64), a flags byte (1: revoked) and three
// zero bytes. An allow the rule book refused (a child of a deny) has none:
// reports on it are judged as on a deny, as in a full replay. The
// artifact's leaf hash is not kept: replayed reports carry only the
// artifact's digest, never the artifact, so nothing checks it again.
//
// A claim table record is the key of a started execution report and the
// key of the decision it names (16 bytes each): a terminal report's
// claim_id must name a started report of its own decision.
//
// All integers are big-endian. An allow costs 80 bytes (id and
// authorization), a started report 64, any other entry 32: a log of a
// million entries has a state of about 32 to 60 MB, which is read and
// searched in place.
//
// A state of format v1 (written by earlier versions, which kept no
// authorizations) is refused with ErrStateVersion.
type State struct {
	cp     log.Checkpoint
	hashes [][]byte // the compact range [0, cp.Size)
	ids    []byte   // sorted records
	// added holds records not merged into ids yet: the merge (a sort) is
	// done when the table is needed, not by every audit.
	added map[idKey]idRecord
	// auths and claims are the sorted authorization and claim tables;
	// addedAuths and addedClaims the records not merged into them yet
	// (an authorization replaces the record of the same key).
	auths, claims           []byte
	addedAuths, addedClaims map[idKey][]byte
	executors               []string
	seqs                    map[string]*seqSet
	totals                  Totals
	// failures holds the first failures ever found (at most maxProblems),
	// failureCount all of them.
	failures     []Problem
	failureCount uint64
}

// stateMagic starts an encoded State.
const stateMagic = "govlog-audit-state/v2\n"

// stateMagicV1 starts a state of the format earlier versions wrote.
const stateMagicV1 = "govlog-audit-state/v1\n"

// ErrStateVersion is returned by UnmarshalState for a state of an earlier
// format (v1), which does not keep what re-judging the reports on earlier
// allows needs.
var ErrStateVersion = errors.New("the audit state was written by an earlier version of govlog (format v1), " +
	"which does not keep the authorizations of the allows it audited: audit from the start, " +
	"anchored by its checkpoint as a trusted one (StateCheckpoint reads it)")

// Sizes of the records of the id, authorization and claim tables.
const (
	recordSize      = 32
	authRecordSize  = 48
	claimRecordSize = 32
)

// table returns the sorted id table, merging what was added.
func (s *State) table() []byte {
	if len(s.added) > 0 {
		s.ids = mergeTable(s.ids, s.added)
		s.added = nil
	}
	return s.ids
}

// authTable returns the sorted authorization table, merging what was added.
func (s *State) authTable() []byte {
	if len(s.addedAuths) > 0 {
		s.auths = mergeRecords(s.auths, authRecordSize, s.addedAuths)
		s.addedAuths = nil
	}
	return s.auths
}

// claimTable returns the sorted claim table, merging what was added.
func (s *State) claimTable() []byte {
	if len(s.addedClaims) > 0 {
		s.claims = mergeRecords(s.claims, claimRecordSize, s.addedClaims)
		s.addedClaims = nil
	}
	return s.claims
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
	Auths        uint64                 `json:"authorizations"`
	Claims       uint64                 `json:"claims"`
	Executors    []string               `json:"executors"`
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
		Auths:        uint64(len(s.authTable()) / authRecordSize),
		Claims:       uint64(len(s.claimTable()) / claimRecordSize),
		Executors:    s.executors,
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
	if h.Executors == nil {
		h.Executors = []string{}
	}
	out := make([]byte, 0, len(stateMagic)+4+len(hdr)+len(s.ids)+len(s.auths)+len(s.claims)+sha256.Size)
	out = append(out, stateMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(hdr)))
	out = append(out, hdr...)
	out = append(out, s.ids...)
	out = append(out, s.auths...)
	out = append(out, s.claims...)
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
	if bytes.HasPrefix(data, []byte(stateMagicV1)) {
		return bad("%w", ErrStateVersion)
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
	tables := rest[n:]
	if h.IDs > uint64(len(tables))/recordSize || h.Auths > uint64(len(tables))/authRecordSize ||
		h.Claims > uint64(len(tables))/claimRecordSize ||
		h.IDs*recordSize+h.Auths*authRecordSize+h.Claims*claimRecordSize != uint64(len(tables)) {
		return bad("its tables hold %d bytes, not %d ids, %d authorizations and %d claims", len(tables), h.IDs, h.Auths, h.Claims)
	}
	ids := tables[:h.IDs*recordSize]
	auths := tables[len(ids) : uint64(len(ids))+h.Auths*authRecordSize]
	claims := tables[len(ids)+len(auths):]
	for _, t := range []struct {
		name  string
		table []byte
		size  int
	}{{"id", ids, recordSize}, {"authorization", auths, authRecordSize}, {"claim", claims, claimRecordSize}} {
		for i := t.size; i < len(t.table); i += t.size {
			if bytes.Compare(t.table[i-t.size:i-t.size+16], t.table[i:i+16]) >= 0 {
				return bad("the %s table is not sorted", t.name)
			}
		}
	}
	for i := 0; i < len(auths); i += authRecordSize {
		if err := checkAuthRecord(auths[i:i+authRecordSize], len(h.Executors)); err != nil {
			return bad("authorization record %d: %w", i/authRecordSize, err)
		}
	}
	seen := make(map[string]bool, len(h.Executors))
	for _, x := range h.Executors {
		if x == "" || seen[x] {
			return bad("the executors are not distinct names")
		}
		seen[x] = true
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
		t.Allows > t.Decisions || t.Denies != t.Decisions-t.Allows || h.IDs > cp.Size || h.Auths > t.Allows || h.Claims > t.Executions {
		return bad("its totals %+v, %d ids, %d authorizations and %d claims do not add up to the %d entries of its checkpoint",
			t, h.IDs, h.Auths, h.Claims, cp.Size)
	}
	if h.FailureCount < uint64(len(h.Failures)) {
		return bad("it counts %d failures and lists %d", h.FailureCount, len(h.Failures))
	}
	s := &State{cp: cp, hashes: h.Range, ids: ids, auths: auths, claims: claims, executors: h.Executors, seqs: make(map[string]*seqSet, len(h.Sequences)),
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

// lookupRecord finds the record of key k in a sorted table of records of
// the given size.
func lookupRecord(table []byte, size int, k idKey) ([]byte, bool) {
	n := len(table) / size
	i := sort.Search(n, func(i int) bool { return bytes.Compare(table[i*size:i*size+16], k[:]) >= 0 })
	if i == n {
		return nil, false
	}
	r := table[i*size : (i+1)*size]
	return r, bytes.Equal(r[:16], k[:])
}

// mergeRecords returns the sorted table of old's records and add's (each
// record of add, of the given size, begins with its key, under which it
// is in add), an added record replacing the old one of the same key.
func mergeRecords(old []byte, size int, add map[idKey][]byte) []byte {
	keys := make([]idKey, 0, len(add))
	for k := range add {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	out := make([]byte, 0, len(old)+len(keys)*size)
	for _, k := range keys {
		n := len(old) / size
		i := sort.Search(n, func(i int) bool { return bytes.Compare(old[i*size:i*size+16], k[:]) >= 0 })
		out = append(out, old[:i*size]...)
		old = old[i*size:]
		if len(old) >= size && bytes.Equal(old[:16], k[:]) {
			old = old[size:]
		}
		out = append(out, add[k]...)
	}
	return append(out, old...)
}

// authRecord encodes the authorization of the allow of key k, with the
// violations recorded in reports on it; executor is the executor's
// number (0 for none).
func authRecord(k idKey, a *log.Authorization, executor uint32, violations uint64) []byte {
	r := make([]byte, 0, authRecordSize)
	r = append(r, k[:]...)
	r = binary.BigEndian.AppendUint64(r, uint64(a.DecidedAt.Unix()))
	r = binary.BigEndian.AppendUint32(r, uint32(a.DecidedAt.Nanosecond()))
	r = binary.BigEndian.AppendUint16(r, uint16(a.MaxExecutions))
	r = binary.BigEndian.AppendUint16(r, uint16(a.Uses))
	r = binary.BigEndian.AppendUint32(r, executor)
	r = binary.BigEndian.AppendUint64(r, violations)
	var flags byte
	if a.Revoked {
		flags = 1
	}
	return append(r, flags, 0, 0, 0)
}

// checkAuthRecord checks an authorization record read from a state whose
// header lists executors executors.
func checkAuthRecord(r []byte, executors int) error {
	nsec := binary.BigEndian.Uint32(r[24:])
	maxExec := binary.BigEndian.Uint16(r[28:])
	uses := binary.BigEndian.Uint16(r[30:])
	x := binary.BigEndian.Uint32(r[32:])
	switch {
	case nsec >= 1e9:
		return fmt.Errorf("decided_at has %d nanoseconds", nsec)
	case maxExec < 1 || maxExec > log.MaxExecutions || uses > maxExec:
		return fmt.Errorf("%d uses of %d executions", uses, maxExec)
	case uint64(x) > uint64(executors):
		return fmt.Errorf("executor %d of %d", x, executors)
	case r[44] > 1 || r[45] != 0 || r[46] != 0 || r[47] != 0:
		return errors.New("bad flags")
	}
	return nil
}

// authorization returns the authorization of the allow of key k, which
// expires at until, and the violations recorded in reports on it; ok is
// false when the state holds none (the decision is no allow the log
// appended).
func (s *State) authorization(k idKey, until int64) (a *log.Authorization, violations uint64, ok bool) {
	r, ok := lookupRecord(s.authTable(), authRecordSize, k)
	if !ok {
		return nil, 0, false
	}
	a = &log.Authorization{
		DecidedAt:       time.Unix(int64(binary.BigEndian.Uint64(r[16:])), int64(binary.BigEndian.Uint32(r[24:]))).UTC(),
		AuthorizedUntil: time.Unix(until, 0).UTC(),
		MaxExecutions:   int(binary.BigEndian.Uint16(r[28:])),
		Uses:            int(binary.BigEndian.Uint16(r[30:])),
		Revoked:         r[44]&1 != 0,
	}
	if x := binary.BigEndian.Uint32(r[32:]); x > 0 {
		a.Executor = s.executors[x-1]
	}
	return a, binary.BigEndian.Uint64(r[36:]), true
}

// claimed returns the key of the decision that the started report of key
// k names; ok is false when k is no started report the state holds.
func (s *State) claimed(k idKey) (decision idKey, ok bool) {
	r, ok := lookupRecord(s.claimTable(), claimRecordSize, k)
	if !ok {
		return idKey{}, false
	}
	return idKey(r[16:32]), true
}

// StatePrefix begins every encoded audit state, of any version.
const StatePrefix = "govlog-audit-state/"

// StateCheckpoint returns the checkpoint note of an encoded state of any
// version, v1 included, verified with logKey: a state that can no longer
// be continued from still says which tree its audit saw, and anchors an
// audit from the start as a trusted checkpoint (Audit.CheckTrusted).
func StateCheckpoint(data []byte, logKey note.Verifier) ([]byte, error) {
	bad := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("failed to read the checkpoint of the audit state: "+format, args...)
	}
	var magic string
	for _, m := range []string{stateMagic, stateMagicV1} {
		if bytes.HasPrefix(data, []byte(m)) {
			magic = m
		}
	}
	if magic == "" || len(data) < len(magic)+4+sha256.Size {
		return bad("not a govlog audit state")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return bad("the file is corrupt (checksum mismatch)")
	}
	rest := body[len(magic):]
	n := binary.BigEndian.Uint32(rest)
	if uint64(n) > uint64(len(rest)-4) {
		return bad("truncated header")
	}
	var h struct {
		Checkpoint string `json:"checkpoint"`
	}
	if err := json.Unmarshal(rest[4:4+n], &h); err != nil {
		return bad("%w", err)
	}
	cp, err := verifier.Checkpoint([]byte(h.Checkpoint), logKey)
	if err != nil {
		return bad("it does not verify with the log key: %w", err)
	}
	return cp.Note, nil
}
