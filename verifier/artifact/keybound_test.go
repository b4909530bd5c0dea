package artifact_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log/logtest/vectors"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/artifact"
)

// keyCase returns a case of testdata/verify/key-artifacts.json (run in full
// by the cross-language test of package verifier).
func keyCase(t testing.TB, name string) *vectors.VerifyCase {
	t.Helper()
	data, err := os.ReadFile("../../testdata/verify/key-artifacts.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []vectors.VerifyCase }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	for i := range f.Cases {
		if f.Cases[i].Name == name {
			return &f.Cases[i]
		}
	}
	t.Fatalf("no case %q", name)
	return nil
}

func TestVerifyWithKeys(t *testing.T) {
	good := keyCase(t, "good")
	logKey, err := note.NewVerifier(good.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	// A GET /v1/keys answer: the JSON receipt of entry 0, and another key.
	receipt := json.RawMessage(*keyCase(t, "a JSON key receipt").KeyReceipt)
	keys, err := json.Marshal(map[string]any{"keys": []any{
		map[string]any{"kid": "test-artifact-0", "jwk": map[string]string{}, "index": 1, "receipt": json.RawMessage(`{}`)},
		map[string]any{"kid": "test-artifact-1", "jwk": map[string]string{}, "index": 0, "receipt": receipt},
	}})
	if err != nil {
		t.Fatal(err)
	}
	opts := artifact.KeyBoundOptions{Options: artifact.Options{Audience: good.Audience, Now: time.Unix(good.Now, 0)},
		Expect: &artifact.Expected{Action: good.Authorize.Action, Resource: good.Authorize.Resource}}
	c, vk, err := artifact.VerifyWithKeys(good.Token, keys, logKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "d-1" || vk.Index != 0 || vk.Key.KID != "test-artifact-1" {
		t.Errorf("verified %+v with key %d %q", c, vk.Index, vk.Key.KID)
	}

	for _, tc := range []struct {
		name  string
		token string
		keys  []byte
		opts  artifact.KeyBoundOptions
		want  error
	}{
		{"the key index names the other key, whose receipt is bad", keyCase(t, "wrong key index").Token, keys, opts, verifier.ErrMalformed},
		{"no key at the index", keyCase(t, "key index of the artifact's own entry").Token, keys, opts, artifact.ErrBinding},
		{"no key index", keyCase(t, "no key index").Token, keys, opts, artifact.ErrInvalid},
		{"another action", good.Token, keys, artifact.KeyBoundOptions{Options: opts.Options, Expect: &artifact.Expected{Action: "delete"}}, artifact.ErrNotAuthorized},
		{"expired", good.Token, keys, artifact.KeyBoundOptions{Options: artifact.Options{Audience: good.Audience, Now: time.Unix(good.Now+3600, 0)}}, artifact.ErrInvalid},
		{"not a key list", good.Token, []byte(`[]`), opts, verifier.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := artifact.VerifyWithKeys(tc.token, tc.keys, logKey, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzVerifyWithKeys feeds VerifyWithKeys artifacts and key lists: it must
// never panic, and what it accepts is bound to a key receipt of the log
// at the artifact's key_index, with the claims re-encoding to the payload.
func FuzzVerifyWithKeys(f *testing.F) {
	good := keyCase(f, "good")
	receipt := *keyCase(f, "a JSON key receipt").KeyReceipt
	f.Add(good.Token, `{"keys":[{"kid":"test-artifact-1","jwk":{},"index":0,"receipt":`+receipt+`}]}`)
	f.Add(keyCase(f, "wrong key index").Token, `{"keys":[]}`)
	f.Add("a.b.c", `{"keys":[{"index":0,"receipt":{}}]}`)
	logKey, err := note.NewVerifier(good.LogKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token, keys string) {
		opts := artifact.KeyBoundOptions{Options: artifact.Options{Audience: good.Audience, Now: time.Unix(good.Now, 0)}}
		c, vk, err := artifact.VerifyWithKeys(token, []byte(keys), logKey, opts)
		if err != nil {
			return
		}
		if c.Govlog.KeyIndex == nil || *c.Govlog.KeyIndex != vk.Index || vk.Key == nil {
			t.Fatalf("accepted an artifact not bound to its key receipt: %+v, key %d", c.Govlog, vk.Index)
		}
		if _, err := c.Payload(); err != nil {
			t.Fatal(err)
		}
	})
}
