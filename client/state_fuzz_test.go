package client

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// FuzzTrustedState feeds arbitrary files to the client as its trusted
// state (WithTrustedState), with the log key of the fake API. Reading it
// never panics, and:
//
//   - a file that is not a checkpoint signed by the log key is an error,
//     and stays an error: Observe of a valid checkpoint fails too (fail
//     closed), and the file is left as it was;
//   - a file that is one gives that checkpoint, the very bytes of the file
//     as its note, as log.OpenCheckpoint reads them; the file round trips
//     (the client writes back exactly the note, and a client reading it
//     gets the same checkpoint); Observe of the same checkpoint succeeds
//     without a request, and a checkpoint of the same size with another
//     root, signed by the log key, is a *verifier.InconsistencyError (a
//     split view), neither changing the file.
//
// The seeds are checkpoints of a 7-entry tree signed by the fake API's key
// (added here) and mangled ones (testdata/fuzz/FuzzTrustedState).
func FuzzTrustedState(f *testing.F) {
	fake := newFakeAPI(f)
	tree := testonly.New(rfc6962.DefaultHasher)
	var notes [][]byte
	for size := range uint64(8) {
		cp, err := log.SignCheckpoint(fake.signer, size, [32]byte(tree.HashAt(size)))
		if err != nil {
			f.Fatal(err)
		}
		notes = append(notes, cp.Note)
		f.Add(cp.Note)
		tree.AppendData([]byte{byte(size)})
	}
	f.Add([]byte{})
	f.Add(bytes.ReplaceAll(notes[3], []byte("\n"), []byte("\r\n")))
	other, _, err := noteKeyPair(2)
	if err != nil {
		f.Fatal(err)
	}
	forged, err := log.SignCheckpoint(other, 3, [32]byte(tree.HashAt(3)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(forged.Note)
	valid := notes[7]
	ctx := context.Background()

	// One directory for every input (the fuzz function is not run
	// concurrently within a process): a new one each time is slow.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "trusted")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		newClient := func(path string) *Client {
			c, err := New(fake.srv.URL, WithLogKey(fake.key), WithTrustedState(path), WithMaxAttempts(1))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		unchanged := func(what string) {
			t.Helper()
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s changed the trusted state file (%v):\n%q\n%q", what, err, data, got)
			}
		}
		requests := fake.requestCount()
		c := newClient(path)
		cp, ok, err := c.TrustedCheckpoint()
		if err != nil {
			if ok {
				t.Fatal("an error, and a checkpoint")
			}
			if _, err := c.Observe(ctx, valid); err == nil {
				t.Fatalf("Observe succeeds on a trusted state that does not read: %q", data)
			}
			unchanged("a failed Observe")
			if fake.requestCount() != requests {
				t.Fatal("a client with an unreadable trusted state made a request")
			}
			return
		}
		if !ok {
			t.Fatal("an existing file reads as no trusted state")
		}
		opened, err := log.OpenCheckpoint(data, fake.key)
		if err != nil || !bytes.Equal(cp.Note, data) || opened.Size != cp.Size || opened.Hash != cp.Hash || cp.Origin != fake.key.Name() {
			t.Fatalf("the trusted checkpoint %+v of %q (OpenCheckpoint: %v)", cp, data, err)
		}

		// The client writes back the note; another client reads the same.
		again := filepath.Join(dir, "again")
		if err := os.Remove(again); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		c2 := newClient(again)
		if err := c2.writeTrusted(cp); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(again); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("the trusted checkpoint is written as %q (%v), read from %q", b, err, data)
		}
		cp2, ok, err := newClient(again).TrustedCheckpoint()
		if err != nil || !ok || cp2.Size != cp.Size || cp2.Hash != cp.Hash || !bytes.Equal(cp2.Note, cp.Note) {
			t.Fatalf("written and read again: %+v (%v), want %+v", cp2, err, cp)
		}

		if got, err := c.Observe(ctx, data); err != nil || got.Size != cp.Size || got.Hash != cp.Hash {
			t.Fatalf("Observe of the trusted checkpoint: %+v, %v", got, err)
		}
		if cp.Size > 0 {
			split := cp.Hash
			split[0] ^= 1
			other, err := log.SignCheckpoint(fake.signer, cp.Size, split)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Observe(ctx, other.Note)
			var ie *verifier.InconsistencyError
			if !errors.As(err, &ie) || ie.Old.Hash != cp.Hash || ie.New.Hash != split {
				t.Fatalf("a checkpoint of the trusted size with another root: %v", err)
			}
		}
		unchanged("Observe")
		if fake.requestCount() != requests {
			t.Fatal("Observe of checkpoints of the trusted size made a request")
		}
	})
}
