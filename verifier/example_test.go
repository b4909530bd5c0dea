package verifier_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/govlog/govlog/verifier"
	"golang.org/x/mod/sumdb/note"
)

// exampleLogKey is the note verifier key of the example log: its name is the
// log origin. govlogd writes it to log.vkey; GET /v1/log serves it.
const exampleLogKey = "example.com/govlog+7f05e4cd+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"

// exampleTLogProof is the receipt of decision d-1, entry 1 of the example
// log, against its checkpoint of size 3.
const exampleTLogProof = `c2sp.org/tlog-proof@v1
extra eyJhdXRob3JpemVkX3VudGlsIjoiMjAyNi0xMS0yNVQxODowNjowMFoiLCJkZWNpc2lvbiI6eyJhY3Rpb24iOiJkZXBsb3kiLCJkZWNpZGVkX2F0IjoiMjAyNi0xMS0yNVQxODowMDowMFoiLCJpZCI6ImQtMSIsIm91dGNvbWUiOiJhbGxvdyIsInBvbGljeSI6eyJpZCI6InByb2QtZGVwbG95In0sInJlc291cmNlIjoic3ZjL2FwaSIsInN1YmplY3QiOiJhZ2VudC03In0sImxvZ2dlZF9hdCI6IjIwMjYtMTEtMjVUMTg6MDE6MDAuMTIzNDU2Nzg5WiIsInN1Ym1pdHRlciI6ImNvbnRyb2wtcGxhbmUtMSIsInYiOjF9
index 1
uXo5bnWRbya3ZLYWlWQZSE3hO57riCusPoj0b5yyrPQ=
0TnOAxIpyO8gVE0kQ2zsVv3Tvv/Y1jkvRuLAneATTWA=

example.com/govlog
3
E+KMQJwv8RpWkkBJ80Itp8JCfKRyrxPkMQIFnxKvSZ8=

— example.com/govlog fwXkzTYQf1xXfkAsrJhwRhlqX8NDfvZCapxKR1MsNVRiSUQouXCJYvbT8Tr+JjRBHtjtzcxIRPGGHAB4UIPNC9JAKgQ=
`

func ExampleReceipt() {
	logKey, err := note.NewVerifier(exampleLogKey)
	if err != nil {
		panic(err)
	}
	v, err := verifier.Receipt([]byte(exampleTLogProof), logKey)
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	d := v.Entry.Decision
	fmt.Println("index:", v.Index)
	fmt.Println("id:", d.ID)
	fmt.Println("outcome:", d.Outcome)
	fmt.Println("subject:", d.Subject)
	fmt.Println("action:", d.Action)
	fmt.Println("resource:", d.Resource)
	fmt.Println("submitter:", v.Entry.Submitter)
	fmt.Println("logged_at:", v.Entry.LoggedAt.Format("2006-01-02T15:04:05.000000000Z"))
	fmt.Println("authorized_until:", v.Entry.AuthorizedUntil.Format("2006-01-02T15:04:05Z"))
	fmt.Printf("checkpoint: %s, size %d\n", v.Checkpoint.Origin, v.Checkpoint.Size)
	// Output:
	// index: 1
	// id: d-1
	// outcome: allow
	// subject: agent-7
	// action: deploy
	// resource: svc/api
	// submitter: control-plane-1
	// logged_at: 2026-11-25T18:01:00.123456789Z
	// authorized_until: 2026-11-25T18:06:00Z
	// checkpoint: example.com/govlog, size 3
}

func ExampleReceipt_tampered() {
	logKey, err := note.NewVerifier(exampleLogKey)
	if err != nil {
		panic(err)
	}
	// Claim the entry is at index 0.
	tampered := strings.Replace(exampleTLogProof, "\nindex 1\n", "\nindex 0\n", 1)
	_, err = verifier.Receipt([]byte(tampered), logKey)
	fmt.Println(err)
	fmt.Println(errors.Is(err, verifier.ErrBadProof))
	// Output:
	// bad proof: inclusion proof does not lead to the checkpoint root
	// true
}
