package verifier_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/internal/testlog"
)

// FuzzParsePolicy feeds arbitrary text to ParsePolicy. It never panics,
// refuses with ErrMalformed, and a policy it accepts behaves as the policy
// format says:
//
//   - a reference evaluation of the text (refPolicy: the Sigsum policy
//     semantics, where a group asks for 1 to all of its members, names each
//     once, and there is one quorum line) accepts it too, and agrees with
//     Satisfied on a checkpoint cosigned by every subset of four witnesses
//     (the only keys the fuzzer can have cosign), on the bare checkpoint,
//     and on cosignatures of another checkpoint;
//   - Satisfied is deterministic, Check is nil exactly when Satisfied is
//     true and otherwise wraps ErrPolicy;
//   - Witnesses are sorted by URL, each once, each with a URL and a key;
//   - Text is the input, and parses again to the same policy.
//
// The seeds are policies over the four witnesses (added here) and mangled
// ones (testdata/fuzz/FuzzParsePolicy).
func FuzzParsePolicy(f *testing.F) {
	l := testlog.New(f)
	l.Grow(3)
	ws := []testWitness{
		newTestWitness(f, "witness.example/w0", 10),
		newTestWitness(f, "witness.example/w1", 11),
		newTestWitness(f, "witness.example/w2", 12),
		newTestWitness(f, "witness.example/w3", 13),
	}
	for _, rest := range []string{
		"group g 2 w0 w1 w2\nquorum g\n",
		"group g any w0 w1\nquorum g\n",
		"group g all w0 w1 w2 w3\nquorum g\n",
		"quorum w2\n",
		"quorum none\n",
		"group a any w0 w1\ngroup b any w2 w3\ngroup both all a b\nquorum both\n",
		"group a 1 w0 w1\ngroup b 2 a w2 w3\nlog example.com/govlog+12345678+AAAA\nquorum b\n",
		"quorum g\ngroup g any w3\n",
	} {
		f.Add([]byte(policyText(ws, rest)))
	}
	f.Add([]byte("witness w0 " + ws[0].vkey + " https://w0.example\r\nquorum w0\r\n"))

	// The checkpoint cosigned by each subset of the witnesses (bit i:
	// witness i), and one cosigned by all of them on another body.
	cp := l.Checkpoint(3).Note
	var subsets [16][]byte
	for s := range subsets {
		var signers []testWitness
		for i, w := range ws {
			if s&(1<<i) != 0 {
				signers = append(signers, w)
			}
		}
		subsets[s] = cosign(f, cp, signers...)
	}
	other := l.Checkpoint(2).Note
	misplaced := append(bytes.Clone(cp), cosign(f, other, ws...)[len(other):]...)

	f.Fuzz(func(t *testing.T, text []byte) {
		p, err := verifier.ParsePolicy(text)
		if err != nil {
			if !errors.Is(err, verifier.ErrInvalidPolicy) {
				t.Fatalf("error %q does not wrap ErrInvalidPolicy", err)
			}
			return
		}
		ref, err := parseRefPolicy(string(text), ws)
		if err != nil {
			t.Fatalf("ParsePolicy accepts a policy the format refuses: %v\n%q", err, text)
		}
		for s, note := range subsets {
			got, want := p.Satisfied(note), ref.satisfied(s)
			if got != want {
				t.Fatalf("cosigned by subset %04b: Satisfied = %v, the policy says %v\n%q", s, got, want, text)
			}
			checkPolicyCheck(t, p, note, got)
		}
		if got, want := p.Satisfied(misplaced), ref.satisfied(0); got != want {
			t.Fatalf("with cosignatures of another checkpoint: Satisfied = %v, want %v\n%q", got, want, text)
		}
		if !ref.none && p.Satisfied(cp[:len(cp)-1]) {
			t.Fatalf("a truncated note satisfies the policy\n%q", text)
		}
		if ref.none != ref.satisfied(0) {
			t.Fatalf("the bare checkpoint: satisfied %v, quorum none %v\n%q", ref.satisfied(0), ref.none, text)
		}

		wits := p.Witnesses()
		for i, w := range wits {
			if w.URL == "" || w.Key == nil {
				t.Fatalf("witness %d: %+v", i, w)
			}
			if i > 0 && strings.Compare(wits[i-1].URL+" "+wits[i-1].Key.Name(), w.URL+" "+w.Key.Name()) > 0 {
				t.Fatalf("witnesses not sorted: %q before %q", wits[i-1].URL, w.URL)
			}
			for _, o := range wits[:i] {
				if o.URL == w.URL && o.Key.Name() == w.Key.Name() && o.Key.KeyHash() == w.Key.KeyHash() {
					t.Fatalf("witness %s listed twice", w.URL)
				}
			}
		}
		if ref.none != (len(wits) == 0) {
			t.Fatalf("quorum none %v with %d witnesses", ref.none, len(wits))
		}

		if !bytes.Equal(p.Text(), text) {
			t.Fatal("Text() is not the parsed text")
		}
		again, err := verifier.ParsePolicy(p.Text())
		if err != nil {
			t.Fatalf("Text() does not parse again: %v", err)
		}
		if !slices.EqualFunc(again.Witnesses(), wits, func(a, b verifier.PolicyWitness) bool {
			return a.URL == b.URL && a.Key.Name() == b.Key.Name() && a.Key.KeyHash() == b.Key.KeyHash()
		}) {
			t.Fatal("Text() parses to other witnesses")
		}
		for s, note := range subsets {
			if again.Satisfied(note) != p.Satisfied(note) {
				t.Fatalf("Text() parses to a policy that differs on subset %04b", s)
			}
		}
	})
}

// checkPolicyCheck checks that Check agrees with Satisfied.
func checkPolicyCheck(t *testing.T, p *verifier.Policy, note []byte, satisfied bool) {
	t.Helper()
	err := p.Check(note)
	if (err == nil) != satisfied || p.Satisfied(note) != satisfied {
		t.Fatalf("Check = %v, Satisfied = %v", err, satisfied)
	}
	if err != nil && !errors.Is(err, verifier.ErrPolicy) {
		t.Fatalf("Check: %v does not wrap ErrPolicy", err)
	}
}

// refPolicy is a reference reading of a witness policy, for the fuzz
// target: the Sigsum policy format's semantics, stricter than the formats
// parser where that parser lets a policy ask for less than it says.
type refPolicy struct {
	none bool
	// eval says whether the quorum is met by the witnesses of ws whose
	// bits are set.
	eval func(set int) bool
}

func (r *refPolicy) satisfied(set int) bool { return r.none || r.eval(set) }

// parseRefPolicy reads a policy ParsePolicy accepted. ws are the witnesses
// that can cosign: a witness line with another key is never satisfied.
func parseRefPolicy(text string, ws []testWitness) (*refPolicy, error) {
	names := map[string]func(int) bool{}
	keys := map[string]bool{}
	quorum := ""
	for line := range strings.SplitSeq(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "log":
		case "witness":
			if len(f) != 4 {
				return nil, fmt.Errorf("witness line %q", line)
			}
			if names[f[1]] != nil {
				return nil, fmt.Errorf("name %q defined twice", f[1])
			}
			v, err := fnote.NewVerifierForCosignatureV1(f[2])
			if err != nil {
				return nil, err
			}
			id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
			if keys[id] {
				return nil, fmt.Errorf("key %s listed twice", id)
			}
			keys[id] = true
			bit := -1
			for i, w := range ws {
				if strings.HasPrefix(w.vkey, id+"+") {
					bit = i
				}
			}
			names[f[1]] = func(set int) bool { return bit >= 0 && set&(1<<bit) != 0 }
		case "group":
			if len(f) < 4 {
				return nil, fmt.Errorf("group %q with no members", line)
			}
			if names[f[1]] != nil {
				return nil, fmt.Errorf("name %q defined twice", f[1])
			}
			members := f[3:]
			k := 0
			switch f[2] {
			case "any":
				k = 1
			case "all":
				k = len(members)
			default:
				n, err := strconv.ParseUint(f[2], 10, 8)
				if err != nil {
					return nil, err
				}
				k = int(n)
			}
			if k < 1 || k > len(members) {
				return nil, fmt.Errorf("group %q asks for %d of %d members", f[1], k, len(members))
			}
			var subs []func(int) bool
			for i, m := range members {
				if slices.Contains(members[:i], m) {
					return nil, fmt.Errorf("group %q names %q twice", f[1], m)
				}
				if names[m] == nil {
					return nil, fmt.Errorf("group %q names %q, not defined before", f[1], m)
				}
				subs = append(subs, names[m])
			}
			names[f[1]] = func(set int) bool {
				n := 0
				for _, s := range subs {
					if s(set) {
						n++
					}
				}
				return n >= k
			}
		case "quorum":
			if len(f) != 2 {
				return nil, fmt.Errorf("quorum line %q", line)
			}
			if quorum != "" {
				return nil, errors.New("more than one quorum line")
			}
			quorum = f[1]
		default:
			return nil, fmt.Errorf("unknown keyword %q", f[0])
		}
	}
	if quorum == "none" {
		return &refPolicy{none: true}, nil
	}
	eval := names[quorum]
	if eval == nil {
		return nil, fmt.Errorf("no quorum %q", quorum)
	}
	return &refPolicy{eval: eval}, nil
}
