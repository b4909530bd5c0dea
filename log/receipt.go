package log

import (
	"github.com/transparency-dev/formats/proof"
)

// Receipt is what a submitter gets for a logged entry (wire contract §4):
// the entry, its index and leaf hash, a checkpoint that covers it, the
// inclusion proof into that checkpoint, and the same evidence as one C2SP
// tlog-proof. Artifact is set by the server for allow decisions on POST only.
type Receipt struct {
	ID             string   `json:"id"`
	Index          uint64   `json:"index"`
	LeafHash       []byte   `json:"leaf_hash"`
	Entry          []byte   `json:"entry"`
	Checkpoint     string   `json:"checkpoint"`
	InclusionProof [][]byte `json:"inclusion_proof"`
	TLogProof      string   `json:"tlog_proof"`
	Artifact       string   `json:"artifact,omitempty"`
}

// NewReceipt assembles a receipt. The tlog-proof's extra line carries the
// entry bytes, so it alone (with the log's verifier key) proves the entry.
func NewReceipt(id string, index uint64, leaf []byte, cp Checkpoint, inclusion [][32]byte) *Receipt {
	lh := LeafHash(leaf)
	hashes := make([][]byte, len(inclusion))
	for i := range inclusion {
		hashes[i] = inclusion[i][:]
	}
	tp := proof.TLogProof{Index: index, Hashes: inclusion, Checkpoint: cp.Note, ExtraData: leaf}
	return &Receipt{
		ID:             id,
		Index:          index,
		LeafHash:       lh[:],
		Entry:          leaf,
		Checkpoint:     string(cp.Note),
		InclusionProof: hashes,
		TLogProof:      string(tp.Marshal()),
	}
}
