package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// groupCommit is the cheapest durable log this machine runs under
// govlogd's load: one goroutine takes every decision waiting, hashes each
// body as an RFC 6962 leaf into a compact range, writes the bodies and
// leaf hashes to a file with one pwrite, fsyncs it, signs one checkpoint
// of the new root for the group (Ed25519, as govlogd's sequencer does), and
// lets the group's handlers go; each handler then signs its artifact, if
// the receipt it answers has one, with the real artifact's signing input.
// No parsing, no stored tree, no index, no inclusion proofs, no receipt
// assembly: what is left is what any log that answers only after its
// entry is on disk, and signs what it answers, spends per decision — the
// floor of a durable answer.
type groupCommit struct {
	f       *os.File
	key     ed25519.PrivateKey
	pending chan *floorEntry
	// artifact maps a receipt (by its first byte's address) to its
	// artifact's JWS signing input; receipts of denials have none.
	artifact map[*byte][]byte
}

type floorEntry struct {
	body []byte
	done chan error
}

// walWrap is where the file's writes start over, so that a long run does
// not fill the disk; an fsync's cost does not depend on the offset.
const walWrap = 256 << 20

func newGroupCommit(ctx context.Context, dir string, receipts [][]byte) (*groupCommit, error) {
	f, err := os.OpenFile(filepath.Join(dir, "floor.wal"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		f.Close()
		return nil, err
	}
	g := &groupCommit{f: f, key: key, pending: make(chan *floorEntry, 65536), artifact: map[*byte][]byte{}}
	for _, r := range receipts {
		var v struct {
			Artifact string `json:"artifact"`
		}
		if err := json.Unmarshal(r, &v); err != nil {
			f.Close()
			return nil, fmt.Errorf("a sample receipt: %w", err)
		}
		if i := strings.LastIndexByte(v.Artifact, '.'); i > 0 {
			g.artifact[&r[0]] = []byte(v.Artifact[:i])
		}
	}
	go g.run(ctx)
	return g, nil
}

func (g *groupCommit) close() error {
	name := g.f.Name()
	err := g.f.Close()
	return errors.Join(err, os.Remove(name))
}

// commit is server.NewFloor's commit: it waits for the decision's group
// to be on disk, then signs the receipt's artifact.
func (g *groupCommit) commit(ctx context.Context, body, receipt []byte) error {
	e := &floorEntry{body: body, done: make(chan error, 1)}
	select {
	case g.pending <- e:
	default:
		return errors.New("too many decisions waiting")
	}
	select {
	case err := <-e.done:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	if in := g.artifact[&receipt[0]]; in != nil {
		ed25519.Sign(g.key, in)
	}
	return nil
}

func (g *groupCommit) run(ctx context.Context) {
	var (
		group []*floorEntry
		buf   []byte
		off   int64
		cp    = make([]byte, 0, 128)
		rng   = (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	)
	for {
		select {
		case e := <-g.pending:
			group = append(group[:0], e)
		case <-ctx.Done():
			return
		}
	more:
		for {
			select {
			case e := <-g.pending:
				group = append(group, e)
			default:
				break more
			}
		}
		buf = buf[:0]
		var err error
		for _, e := range group {
			h := rfc6962.DefaultHasher.HashLeaf(e.body)
			if err == nil {
				err = rng.Append(h, nil)
			}
			buf = append(append(buf, h...), e.body...)
		}
		root, rerr := rng.GetRootHash(nil)
		err = errors.Join(err, rerr)
		if off+int64(len(buf)) > walWrap {
			off = 0
		}
		if err == nil {
			_, err = g.f.WriteAt(buf, off)
		}
		if err == nil {
			err = g.f.Sync()
		}
		off += int64(len(buf))
		cp = fmt.Appendf(cp[:0], "floor\n%d\n%x\n%d\n", rng.End(), root, time.Now().UnixNano())
		ed25519.Sign(g.key, cp)
		for _, e := range group {
			e.done <- err
		}
	}
}
