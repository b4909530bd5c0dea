package log

import (
	"encoding/base64"
	"strconv"
	"strings"
	"unsafe"

	"github.com/govlog/govlog/internal/b64"
)

// Receipt is what a submitter gets for a logged entry (wire contract §4):
// the entry, its index and leaf hash, a checkpoint that covers it, the
// inclusion proof into that checkpoint, and the same evidence as one C2SP
// tlog-proof. Artifact is set by the server for allow decisions on POST only.
//
// A receipt made by NewReceipt remembers the base64 it wrote of Entry and
// of the inclusion proof's hashes, and AppendJSON writes it again while
// those fields hold the same slices: change them by assigning other
// slices, never by writing into their bytes.
type Receipt struct {
	ID             string   `json:"id"`
	Index          uint64   `json:"index"`
	LeafHash       []byte   `json:"leaf_hash"`
	Entry          []byte   `json:"entry"`
	Checkpoint     string   `json:"checkpoint"`
	InclusionProof [][]byte `json:"inclusion_proof"`
	TLogProof      string   `json:"tlog_proof"`
	Artifact       string   `json:"artifact,omitempty"`

	// entry64 is the base64 of entryOf, the entry NewReceipt was given,
	// as it wrote it into TLogProof (a part of that string), and proof64
	// the base64 of the hashes of proofOf, its inclusion proof, a line
	// each.
	entry64, proof64 string
	entryOf          []byte
	proofOf          [][32]byte
}

// NewReceipt assembles a receipt. The tlog-proof's extra line carries the
// entry bytes, so it alone (with the log's verifier key) proves the entry.
func NewReceipt(id string, index uint64, leaf []byte, cp Checkpoint, inclusion [][32]byte) *Receipt {
	return newReceipt(id, index, leaf, LeafHash(leaf), cp, inclusion)
}

// newReceipt is NewReceipt given the leaf hash of leaf.
func newReceipt(id string, index uint64, leaf []byte, leafHash [32]byte, cp Checkpoint, inclusion [][32]byte) *Receipt {
	// One allocation for the receipt and its leaf hash.
	parts := &struct {
		r  Receipt
		lh [32]byte
	}{lh: leafHash}
	hashes := make([][]byte, len(inclusion))
	for i := range inclusion {
		hashes[i] = inclusion[i][:]
	}
	r := &parts.r
	*r = Receipt{
		ID:             id,
		Index:          index,
		LeafHash:       parts.lh[:],
		Entry:          leaf,
		Checkpoint:     string(cp.Note),
		InclusionProof: hashes,
		TLogProof:      tlogProof(index, inclusion, cp.Note, leaf),
	}
	// The parts of the tlog-proof AppendJSON writes again (see tlogProof).
	start := len(tlogProofHeader)
	if leaf != nil {
		start += len("extra ")
		r.entry64, r.entryOf = r.TLogProof[start:start+base64.StdEncoding.EncodedLen(len(leaf))], leaf
		start += len(r.entry64) + 1
	}
	start += strings.IndexByte(r.TLogProof[start:], '\n') + 1 // the index line
	r.proof64, r.proofOf = r.TLogProof[start:start+len(inclusion)*(hashBase64+1)], inclusion
	return r
}

// hashBase64 is the length of a hash in standard base64.
const hashBase64 = 44

// tlogProofHeader is the first line of a C2SP tlog-proof.
const tlogProofHeader = "c2sp.org/tlog-proof@v1\n"

// tlogProof returns the C2SP tlog-proof of the leaf at index: byte for
// byte what formats/proof.TLogProof.Marshal writes for {index, hashes,
// checkpoint, extra} (the tests hold it to it), in one allocation of the
// exact size instead of a growing buffer and a string per line.
func tlogProof(index uint64, hashes [][32]byte, checkpoint, extra []byte) string {
	enc := base64.StdEncoding
	n := len(tlogProofHeader) + len("index \n") + 20 + len(hashes)*(enc.EncodedLen(32)+1) + 1 + len(checkpoint)
	if extra != nil {
		n += len("extra \n") + enc.EncodedLen(len(extra))
	}
	b := make([]byte, 0, n)
	b = append(b, tlogProofHeader...)
	if extra != nil {
		b = append(b, "extra "...)
		b = b64.AppendStd(b, extra)
		b = append(b, '\n')
	}
	b = append(b, "index "...)
	b = strconv.AppendUint(b, index, 10)
	b = append(b, '\n')
	for i := range hashes {
		b = b64.AppendStd(b, hashes[i][:])
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, checkpoint...)
	// b is not written again: the string shares its bytes.
	return unsafe.String(unsafe.SliceData(b), len(b))
}
