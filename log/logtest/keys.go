package logtest

import (
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// Fixed test-only note keys. They were generated once with note.GenerateKey
// and are public: never use them for a real log. The golden vectors under
// the module's testdata/keys are these keys.
const (
	// SignerKey signs the checkpoints of every test log.
	SignerKey = "PRIVATE+KEY+example.com/govlog+f2a81beb+AaFfmMZ2zjSTYcacB9L/ORqeLcISvxQ5IoqG8XDSt44s"
	// VerifierKey is SignerKey's verifier key.
	VerifierKey = "example.com/govlog+f2a81beb+AU/F0O0Z6IrJ/0KmSp5Rax8khcDGbDeFrp36+0zmZYjv"
	// OtherSignerKey has the same name (origin) as SignerKey but is another
	// key: a log signed by it is another log.
	OtherSignerKey = "PRIVATE+KEY+example.com/govlog+6911e595+AVq8kQkUIaQSs99wKwbysP3l/l3xZaFSNJM7pwx6Hd8/"
	// OtherVerifierKey is OtherSignerKey's verifier key.
	OtherVerifierKey = "example.com/govlog+6911e595+AX6DPWnEB7WyEs+XXhKdEj+vrxwOdr9x10d+Bht1FSm9"
)

// Keys returns the signer and verifier of SignerKey.
func Keys(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	return keys(t, SignerKey, VerifierKey)
}

// OtherKeys returns the signer and verifier of OtherSignerKey.
func OtherKeys(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	return keys(t, OtherSignerKey, OtherVerifierKey)
}

func keys(t testing.TB, skey, vkey string) (note.Signer, note.Verifier) {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatalf("failed to load the test signer key: %v", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("failed to load the test verifier key: %v", err)
	}
	return s, v
}
