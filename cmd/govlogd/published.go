package main

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log"
)

// checkPublished enforces the fork rule against the last checkpoint the
// operator knows was published (Config.PublishedCheckpoint): the stored log
// must reach at least its size and have its root hash at that size, else a
// restored older (or different) copy would sign checkpoints that fork from
// published ones. path "" checks nothing.
func checkPublished(ctx context.Context, path string, v note.Verifier, b log.Backend) error {
	if path == "" {
		return nil
	}
	text, err := keys.ReadConfig(path)
	if err != nil {
		return fmt.Errorf("failed to read --published-checkpoint: %w", err)
	}
	pub, err := log.OpenCheckpoint(text, v)
	if err != nil {
		return fmt.Errorf("--published-checkpoint %s is not a checkpoint of this log's key %s: %w", path, v.Name(), err)
	}
	latest, err := b.Latest(ctx)
	if err != nil {
		return fmt.Errorf("refusing to start: --published-checkpoint has size %d, but the stored log has no checkpoint "+
			"(%w): this is not the log that published it, or a restore lost it; restore a copy at least that large", pub.Size, err)
	}
	if latest.Size < pub.Size {
		return fmt.Errorf("refusing to start: the stored log has size %d, smaller than the published checkpoint's %d: "+
			"it is an older copy (a restored backup?), and signing from here would fork the log; restore a copy of size %d or more",
			latest.Size, pub.Size, pub.Size)
	}
	if latest.Size == pub.Size || pub.Size == 0 {
		if pub.Size == 0 || latest.Hash == pub.Hash {
			return nil
		}
		return fmt.Errorf("refusing to start: the stored log's root hash at size %d is %x, the published checkpoint's is %x: "+
			"the stored log forks from the published one", pub.Size, latest.Hash, pub.Hash)
	}
	p, err := b.ConsistencyProof(ctx, pub.Size, latest.Size)
	if err != nil {
		return fmt.Errorf("failed to prove the stored log consistent with --published-checkpoint: %w", err)
	}
	hashes := make([][]byte, len(p))
	for i := range p {
		hashes[i] = p[i][:]
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, pub.Size, latest.Size, hashes, pub.Hash[:], latest.Hash[:]); err != nil {
		return fmt.Errorf("refusing to start: the stored log of size %d is not consistent with the published checkpoint of size %d "+
			"(its root at size %d differs): it forks from the published log: %w", latest.Size, pub.Size, pub.Size, err)
	}
	return nil
}
