package vectors

// The "about" of each verification vector file, and the README of
// testdata/verify. docs/verification.md states the algorithms these cases
// check, step by step.

const aboutCheckpoints = "Verify a checkpoint: a C2SP signed note signed by log_key (an Ed25519 note verifier key) " +
	"whose text is a C2SP tlog-checkpoint of the log whose origin is the key's name. Input: checkpoint. " +
	"ok: it verifies to expect (origin, size, root_hash in base64). Mangle applies to checkpoint."

const aboutPolicies = "Parse a witness policy (the text format of github.com/transparency-dev/formats/witness, " +
	"with govlog's stricter rules) and, when checkpoint is given, verify the checkpoint with log_key " +
	"and check that its cosignature/v1 signatures satisfy the policy. Inputs: policy, checkpoint (optional). " +
	"ok: the policy parses and, with a checkpoint, the checkpoint verifies and satisfies it. Mangle applies to checkpoint."

const aboutProofs = "RFC 6962 proofs, SHA-256. type inclusion: verify proof (base64 hashes) that leaf_hash is at index " +
	"in the tree of size whose root hash is root. type consistency: verify proof that the tree of size1 with " +
	"root1 is a prefix of the tree of size2 with root2 (size1 = 0: the proof is empty). The leaves are the bytes \"leaf 0\", \"leaf 1\", …"

const aboutConsistency = "Verify two checkpoints signed by log_key (old, new) and the RFC 6962 consistency proof " +
	"(base64 hashes) from the old to the new: the new is not smaller, checkpoints of one size have one root " +
	"and an empty proof, and the proof verifies."

const aboutReceipts = "Verify a receipt with log_key. format tlog-proof: a C2SP tlog-proof whose extra line is the " +
	"entry; format json: the JSON receipt of the REST API, whose fields must all agree with its tlog_proof. " +
	"ok: it verifies to expect (index, kind, id, leaf_hash, and the checkpoint's size and root_hash when given). " +
	"Mangle applies to receipt."

const aboutArtifacts = "Verify an authorization artifact (token, a compact JWS) with the Ed25519 keys of jwks, " +
	"for the log whose origin is log_key's name, at Unix time now with 30 s of leeway, for audience " +
	"(none when absent). With receipt (a tlog-proof, verified with log_key), the artifact must be bound " +
	"to it. With authorize, it must authorize exactly that action and resource, and that subject when " +
	"given. ok: it verifies to expect.claims (its payload). Mangle applies to token."

const aboutKeyArtifacts = "Verify an authorization artifact (token) with nothing but log_key: verify key_receipt " +
	"(the receipt of the signing key's key entry: a tlog-proof, or a JSON receipt whose id is the kid) with log_key, " +
	"and, when policy is given, that its checkpoint satisfies the witness policy; the entry must be a key entry: " +
	"RFC 8785 canonical {\"key\":{\"jwk\":{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":…},\"kid\":…},\"logged_at\",\"submitter\",\"v\":1}, " +
	"the jwk with exactly these members, x the canonical unpadded base64url of 32 bytes, kid with the syntax of an id, " +
	"logged_at and submitter as in any entry. Then verify the token as in artifacts.json with that one key (the header's kid " +
	"must be the entry's kid), at Unix time now, for audience, without a decision receipt; its govlog.key_index must be " +
	"present and equal to the key receipt's index. With authorize, it must authorize exactly that action and resource, and " +
	"that subject when given. ok: it verifies to expect.claims. Mangle applies to token, or to key_receipt when its field says so."

const aboutBundles = "Verify an evidence bundle (GET /v1/export, format govlog-evidence/v1) with log_key, and, when " +
	"policy is given, the witness policy: a JSON object with exactly the members format (govlog-evidence/v1), origin " +
	"(log_key's name), verifier_key (log_key itself), checkpoint (verified with log_key, and the policy), query (an object " +
	"of strings, not evidence), entries and keys, in this order. entries: objects of exactly index (a canonical decimal, " +
	"increasing, below the checkpoint's size), entry (canonical standard base64 of a valid entry) and inclusion_proof " +
	"(at most 64 canonical base64 hashes) that leads to the checkpoint's root. keys: objects of exactly kid, jwk, index and " +
	"receipt, a JSON receipt of the key entry of kid at index that verifies with log_key, whose jwk is jwk. " +
	"ok: it verifies to expect (the checkpoint's size, the number of entries)."

const aboutEntries = "Parse and validate an entry (a leaf): RFC 8785 canonical JSON of the entry shape, v 1, " +
	"holding exactly one of a decision, an execution report (with the artifact_digest and violation the log sets, never " +
	"the artifact), a revocation or a key, that obeys the schema, timestamps as Go's time.Parse reads " +
	"RFC 3339, decided_at or at at most 5 minutes after logged_at. Input: leaf. ok: the entry reports expect.fields."

const aboutJCS = "Canonicalize JSON per RFC 8785 (JCS): strict JSON (no duplicate member names, valid UTF-8, " +
	"no lone surrogates, at most 10,000 levels of nesting, numbers within the double range), members sorted by " +
	"UTF-16 code units, numbers in ECMAScript form, minimal string escapes. Input: input. ok: the result is canonical."

const verifyReadme = `# Verification vectors

The cases that every verifier of govlog evidence must accept or refuse,
whatever its language: the Go packages (verifier, client), the TypeScript
package (clients/ts) and the Python package (clients/python) all run these
files, and each asserts the verdict of every case. A case added here fails
in every language until each handles it. Generated by
` + "`go run ./testdata/gen.go`" + ` (log/logtest/vectors); do not edit by hand.
[docs/verification.md](../../docs/verification.md) states the algorithms
step by step.

Each file is one family: ` + "`" + `{"about": "...", "cases": [...]}` + "`" + `. Every case has

- ` + "`name`" + `, unique in its file, and ` + "`why`" + ` for a case written by hand;
- ` + "`want`" + `: ` + "`ok`" + ` (it verifies, to ` + "`expect`" + ` when given) or ` + "`fail`" + `;
- the inputs of its family (below). An input that is not valid UTF-8 is
  given in base64 in ` + "`<field>_base64`" + ` instead of ` + "`<field>`" + `;
- optionally ` + "`mangle`" + ` (` + "`" + `{"xor": [1, 32], "delete": true}` + "`" + `): the case also
  stands for one case per byte of its family's primary input and per
  change, that byte XORed with each value, or deleted; every one of them
  must fail; ` + "`" + `"field"` + "`" + ` names the input changed when it is not the
  family's primary input. Name them ` + "`<name>: byte <i> xor 0x<x>`" + ` and ` + "`<name>: byte <i> deleted`" + `.

| file | the case's inputs | what is checked |
|---|---|---|
| checkpoints.json | log_key, checkpoint | ` + aboutCheckpoints + ` |
| policies.json | log_key, policy, checkpoint | ` + aboutPolicies + ` |
| proofs.json | type, index, size, leaf_hash, size1, size2, root, root1, root2, proof | ` + aboutProofs + ` |
| consistency.json | log_key, old, new, proof | ` + aboutConsistency + ` |
| receipts.json | log_key, format, receipt | ` + aboutReceipts + ` |
| artifacts.json | log_key, jwks, token, now, audience, receipt, authorize | ` + aboutArtifacts + ` |
| key-artifacts.json | log_key, key_receipt, policy, token, now, audience, authorize | ` + aboutKeyArtifacts + ` |
| bundles.json | log_key, policy, bundle | ` + aboutBundles + ` |
| entries.json | leaf | ` + aboutEntries + ` |
| jcs.json | input | ` + aboutJCS + ` |

expect.fields of an entry: kind (decision, execution, revocation, key),
id (a key's kid), submitter, logged_at, and for a decision outcome,
subject, action, resource, policy_id, parent_id, decided_at, executor and
(allow) authorized_until, for an execution report decision_id, status, at,
claim_id, artifact_digest and violation, for a revocation decision_id and
revoked_at; timestamps as written in the entry; a field the entry lacks is
absent.

The keys: log_key is testdata/keys/log.vkey (the test log,
example.com/govlog) unless a case says otherwise; the witnesses
witness.example/w1 … w4 and the artifact key test-artifact-1 are derived
from fixed seeds in log/logtest/vectors. All are test-only and public.
`
