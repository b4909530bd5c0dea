package witness_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/witness"
)

// The vectors of the package documentation (and docs/witness.md): the log
// key derived from 32 bytes of 0x01, a log of the leaves "leaf 0" … "leaf
// 4" (RFC 6962), and a witness key derived from 32 bytes of 0x02.
const (
	exampleLogKey     = "example.com/govlog+7f05e4cd+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"
	exampleWitnessKey = "PRIVATE+KEY+witness.example/w1+df1c0a35+BAICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC"
	exampleWitnessV   = "witness.example/w1+df1c0a35+BIE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU"

	exampleCheckpoint3 = `example.com/govlog
3
1Pksj7uJcg6ztVZ3x9fvrd/rENEaGoSguo8aIzN/qpU=

— example.com/govlog fwXkzbcbcpYdSMYCrU6z113X5IilrajYsJtsdyXA9QF/eLgH+HlwJkJeUmYfjeoCDVPO7shH58oVREoWLYz0Gv1gZQI=
`
	exampleRequest = `old 3
qze6NNHf4pAV3nF6bVdkqPsCnDp6D1tkuTtUNRiFv3w=
WL0UluFoSqySAcLmh+565PUclqiw2B7zWDYouT0800U=
/F9riP+FVPdbsvnm85wxsZNtRLaSdu33sSBalVuXYeM=
gxFfiUeVX6/cKifn9MCFS72Nonuxs+NAXbVxya+Nvho=

example.com/govlog
5
NBUVmC1lDiNSDb1U1/zwr6G3DMOhakEdRk3JwayWwwE=

— example.com/govlog fwXkzTvrtWmTOuwL2VqVZKmV/MVa6hphA1P65OwojdqZBHQYiMR0DWTUABdiEJtFM7ifV3xdJZyyBI3iMsjupYea2AM=
`
	// exampleCosignature is the witness's cosignature of the checkpoint of
	// size 5 made at 2026-11-25T18:00:00Z (timestamp 1795629600).
	exampleCosignature = "— witness.example/w1 3xwKNQAAAABrByIg2aGm0gTRz2ui+YaOPjsZljrImSEDr3nLDbPW+xGXlU3bU+BIFniomNqPXbtZOjUCQjzOPYVX28xBreqbJxKWDg==\n"
)

// A witness first cosigns the log's checkpoint of size 3 (old 0: trust on
// first use), then the request of the package documentation, which extends
// it to size 5 with a consistency proof.
func ExampleWitness_Update() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "witness-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	w, err := witness.New(ctx, witness.Config{
		Key:      exampleWitnessKey,
		Logs:     []string{exampleLogKey},
		Database: filepath.Join(dir, "witness.db"),
	})
	if err != nil {
		panic(err)
	}
	defer w.Close()
	if _, err := w.Update(ctx, 0, []byte(exampleCheckpoint3), nil); err != nil {
		panic(err)
	}
	old, proof, checkpoint, err := witness.ParseRequest([]byte(exampleRequest))
	if err != nil {
		panic(err)
	}
	cosig, err := w.Update(ctx, old, checkpoint, proof)
	if err != nil {
		panic(err)
	}
	logV, _ := note.NewVerifier(exampleLogKey)
	witnessV, _ := fnote.NewVerifierForCosignatureV1(w.VerifierKey())
	n, err := note.Open(append(checkpoint, cosig...), note.VerifierList(logV, witnessV))
	if err != nil {
		panic(err)
	}
	fmt.Println(w.VerifierKey())
	fmt.Println(len(n.Sigs), "valid signatures, the second by", n.Sigs[1].Name)
	// Output:
	// witness.example/w1+df1c0a35+BIE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU
	// 2 valid signatures, the second by witness.example/w1
}

// TestDocumentedCosignature checks the cosignature line of the
// documentation.
func TestDocumentedCosignature(t *testing.T) {
	_, _, checkpoint, err := witness.ParseRequest([]byte(exampleRequest))
	if err != nil {
		t.Fatal(err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(exampleWitnessV)
	if err != nil {
		t.Fatal(err)
	}
	logV, _ := note.NewVerifier(exampleLogKey)
	n, err := note.Open(append(checkpoint, exampleCosignature...), note.VerifierList(logV, v))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("the documented cosignature does not verify: %v", err)
	}
	ts, err := fnote.CoSigV1Timestamp(n.Sigs[1])
	if err != nil || ts.Unix() != 1795629600 {
		t.Fatalf("timestamp %v %v", ts, err)
	}
	if vk, err := witness.VerifierKeyOf(exampleWitnessKey); err != nil || vk != exampleWitnessV {
		t.Fatalf("VerifierKeyOf = %q, %v", vk, err)
	}
}
