package verifier

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/formats/witness"
	"golang.org/x/mod/sumdb/note"
)

// ErrPolicy: a checkpoint's cosignatures do not satisfy the witness
// policy.
var ErrPolicy = errors.New("witness policy not satisfied")

// ErrInvalidPolicy: a witness policy's text is not a policy. A policy is
// configuration, not evidence: ParsePolicy's errors wrap this, not
// ErrMalformed.
var ErrInvalidPolicy = errors.New("invalid witness policy")

// MaxPolicyBytes bounds a witness policy file.
const MaxPolicyBytes = 64 << 10

// Policy is a witness quorum policy: which witnesses must have cosigned a
// checkpoint before it is trusted. Its text format is the one
// github.com/transparency-dev/formats/witness parses (Sigsum's policy
// format with cosignature/v1 witness keys):
//
//	# witness <name> <cosignature/v1 verifier key (type 0x04)> <URL prefix of add-checkpoint>
//	witness w1 witness.example/w1+7b0d6455+BGf1CNdXQA7xrCpSXM9PmHbI/KFBYTNd7qNqd31wi/Eo https://w1.witness.example
//	witness w2 witness.example/w2+b09a63a9+BBgOiOPX9+k7W19Iy2qAlY3SjLF3c9tlvm6MNWmzvE39 https://w2.witness.example
//	group both all w1 w2
//	quorum both
//
// A group needs "all", "any" or a number of its members; groups nest;
// "quorum none" requires no cosignature. A checkpoint satisfies the policy
// when the quorum group is satisfied by valid cosignature/v1 signatures of
// the witnesses' keys on exactly the checkpoint's body. The log's own
// signature is not part of the policy: check it first (Receipt,
// Checkpoint).
type Policy struct {
	text      []byte
	group     witness.Group
	witnesses []PolicyWitness
}

// PolicyWitness is one witness a policy names.
type PolicyWitness struct {
	// Key is the witness's cosignature/v1 verifier.
	Key note.Verifier
	// URL is where the witness accepts checkpoints: the policy's URL
	// prefix with /add-checkpoint appended.
	URL string
}

// ParsePolicy parses a witness policy. It fails with ErrInvalidPolicy when the
// text is not a policy: unknown keywords, witness keys that are not
// cosignature/v1 keys, groups naming unknown members, naming a member
// twice, or asking for none of their members or more than they have, or
// not exactly one quorum line.
func ParsePolicy(text []byte) (*Policy, error) {
	if len(text) > MaxPolicyBytes {
		return nil, fmt.Errorf("%w: it is %d bytes, the limit is %d", ErrInvalidPolicy, len(text), MaxPolicyBytes)
	}
	g, err := parseGroup(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	if err := distinctKeys(text); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	if err := checkGroups(text); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	p := &Policy{text: slices.Clone(text), group: g}
	seen := map[string]bool{}
	var walk func(g witness.Group)
	walk = func(g witness.Group) {
		for _, c := range g.Components {
			switch c := c.(type) {
			case witness.Witness:
				id := fmt.Sprintf("%s %s %08x", c.URL, c.Key.Name(), c.Key.KeyHash())
				if !seen[id] {
					seen[id] = true
					p.witnesses = append(p.witnesses, PolicyWitness{Key: c.Key, URL: c.URL})
				}
			case witness.Group:
				walk(c)
			}
		}
	}
	walk(g)
	slices.SortFunc(p.witnesses, func(a, b PolicyWitness) int {
		return strings.Compare(a.URL+" "+a.Key.Name(), b.URL+" "+b.Key.Name())
	})
	return p, nil
}

// parseGroup runs the formats parser, which panics on some inputs (a
// threshold beyond the size of a group it has accepted); a panic is a
// malformed policy.
func parseGroup(text []byte) (g witness.Group, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return witness.ParsePolicy(text)
}

// distinctKeys fails when two witness lines name the same key (one
// cosignature would then count for two witnesses of a group; the same
// witness may be a member of several groups), and when a key's declared key
// ID is not its cosignature/v1 key ID (a mistyped or plain Ed25519 key).
func distinctKeys(text []byte) error {
	seen := map[string]string{}
	for _, line := range strings.Split(string(text), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "witness" {
			continue
		}
		v, err := fnote.NewVerifierForCosignatureV1(f[2])
		if err != nil {
			return fmt.Errorf("witness %q: %w", f[1], err)
		}
		// The formats parser also takes plain Ed25519 (0x01) and ML-DSA-44
		// (0x06) keys; a govlog witness signs cosignature/v1 (0x04).
		_, rest, _ := strings.Cut(f[2], "+")
		_, key64, _ := strings.Cut(rest, "+")
		if key, err := base64.StdEncoding.DecodeString(key64); err != nil || len(key) == 0 || key[0] != 0x04 {
			return fmt.Errorf("witness %q: %s is not a cosignature/v1 key (type 0x04)", f[1], f[2])
		}
		id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
		if !strings.HasPrefix(f[2], id+"+") {
			return fmt.Errorf("witness %q: the key ID of %s is not the one of its key (%08x): "+
				"it must be a cosignature/v1 key (type 0x04)", f[1], f[2], v.KeyHash())
		}
		if other, ok := seen[id]; ok {
			return fmt.Errorf("witnesses %q and %q have the same key %s", other, f[1], id)
		}
		seen[id] = f[1]
	}
	return nil
}

// checkGroups fails where the formats parser asks less of a policy than the
// policy format does: a group must need 1 to all of its members (the
// parser takes a threshold of 0, and "all" of no members, as a group every
// checkpoint satisfies), must name each member once (one cosignature would
// count for each time its witness is named), and a policy has one quorum
// line (the parser keeps the last).
func checkGroups(text []byte) error {
	quorums := 0
	for _, line := range strings.Split(string(text), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		switch {
		case len(f) >= 1 && f[0] == "quorum":
			if quorums++; quorums > 1 {
				return errors.New("more than one quorum line")
			}
		case len(f) >= 3 && f[0] == "group":
			members := f[3:]
			if len(members) == 0 {
				return fmt.Errorf("group %q has no members", f[1])
			}
			if n, err := strconv.ParseUint(f[2], 10, 8); err == nil && n == 0 {
				return fmt.Errorf("group %q needs none of its members: use \"quorum none\" to require no cosignature", f[1])
			}
			for i, m := range members {
				if slices.Contains(members[:i], m) {
					return fmt.Errorf("group %q names %q twice", f[1], m)
				}
			}
		}
	}
	return nil
}

// Text returns the policy as it was parsed.
func (p *Policy) Text() []byte { return slices.Clone(p.text) }

// Witnesses returns every witness the policy names, once each, ordered by
// URL.
func (p *Policy) Witnesses() []PolicyWitness { return slices.Clone(p.witnesses) }

// Satisfied reports whether the signed checkpoint note carries enough valid
// cosignatures to satisfy the policy.
func (p *Policy) Satisfied(checkpoint []byte) bool {
	return len(checkpoint) <= MaxCheckpointBytes && p.group.Satisfied(checkpoint)
}

// Check returns nil when the signed checkpoint note satisfies the policy,
// and an error wrapping ErrPolicy that names the witnesses that cosigned
// it otherwise. Check the checkpoint's log signature first: Check only
// looks at cosignatures.
func (p *Policy) Check(checkpoint []byte) error {
	if p.Satisfied(checkpoint) {
		return nil
	}
	var have []string
	for _, w := range p.witnesses {
		if witness.Witness(w).Satisfied(checkpoint) {
			have = append(have, w.Key.Name())
		}
	}
	if len(have) == 0 {
		return fmt.Errorf("%w: the checkpoint has no valid cosignature by a witness of the policy", ErrPolicy)
	}
	return fmt.Errorf("%w: the checkpoint is cosigned by %s only", ErrPolicy, strings.Join(have, ", "))
}

// Cosignature is a witness's valid cosignature/v1 on a checkpoint: the
// witness saw the checkpoint, and so every entry it covers, no later than
// Time.
type Cosignature struct {
	// Witness is the name of the witness's key.
	Witness string `json:"witness"`
	// Time is the cosignature's timestamp (whole seconds, UTC).
	Time time.Time `json:"time"`
}

// Cosignatures returns the valid cosignature/v1 signatures of the
// policy's witnesses on the signed checkpoint note, earliest first (then
// by witness name). They give the checkpoint independent time bounds: the
// log's tree of that size existed at each Time, and a witness cosigns
// only checkpoints consistent with those it cosigned before.
//
// SPEC: c2sp.org/tlog-cosignature: "Semantically, a v1 cosignature is a
// statement that, as of the specified time, the consistent tree head with
// the largest size the cosigner has observed for the log identified by the
// origin line has the specified root hash."
func (p *Policy) Cosignatures(checkpoint []byte) []Cosignature {
	if len(checkpoint) > MaxCheckpointBytes {
		return nil
	}
	var out []Cosignature
	for _, w := range p.witnesses {
		n, err := note.Open(checkpoint, note.VerifierList(w.Key))
		if err != nil {
			continue
		}
		for _, s := range n.Sigs {
			t, err := fnote.CoSigV1Timestamp(s)
			if err != nil {
				continue
			}
			out = append(out, Cosignature{Witness: w.Key.Name(), Time: t.UTC()})
		}
	}
	slices.SortFunc(out, func(a, b Cosignature) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Witness, b.Witness)
	})
	return slices.CompactFunc(out, func(a, b Cosignature) bool { return a == b })
}
