// Package trillian is a log.Backend on a Trillian log tree
// (github.com/google/trillian) with MySQL or MariaDB storage: the storage
// of govlog when one machine is not enough. Several govlogd replicas may
// serve one tree; each has its own Backend.
//
// Trillian holds the leaves and the Merkle tree: its log server queues
// leaves (QueueLeaf), its signer integrates them into the tree, and it
// serves proofs. Trillian no longer signs tree heads; like Certificate
// Transparency and Rekor, govlog is the "personality" that signs a C2SP
// checkpoint for Trillian's tree head, through the SignFunc given to
// Append. Govlog keeps what Trillian cannot answer in its own tables, in
// the same database (schema/*.sql, applied by Open):
//
//	govlog_ids(tree_id, kind, id, leaf, leaf_hash, allow, leaf_index)
//	    Primary key (tree_id, kind, id). The reservation and index of each
//	    decision (kind 1), execution report (2), revocation (3) and
//	    artifact key (4): its leaf bytes,
//	    their RFC 6962 leaf hash, whether a decision is an allow, and its
//	    index in the tree (NULL until it is known to be covered by a stored
//	    checkpoint).
//	govlog_sequences(tree_id, submitter_hash, sequence, id)
//	    Primary key (tree_id, SHA-256 of the submitter, sequence).
//	govlog_authorizations(tree_id, decision_id, decided_at,
//	                      authorized_until, max_executions, executor,
//	                      leaf_hash, uses, revoked)
//	    Primary key (tree_id, decision_id): what the rule book needs of each
//	    allow (log.Authorization), its accepted claims and revocation.
//	    The reservation locks the rows of the decisions a batch names
//	    before it judges the batch, so replicas claiming one authorization
//	    at once are judged one after the other.
//	govlog_checkpoints(tree_id, size, root_hash, note)
//	    Primary key (tree_id, size): every checkpoint signed for the tree,
//	    at most one per size.
//	govlog_trees(tree_id)
//	    One row per tree, locked while a checkpoint is stored.
//	govlog_search(tree_id, term, leaf_index)
//	    Primary key (tree_id, term, leaf_index): the search postings of
//	    every entry (log.Summary.Terms), written in the transaction that
//	    stores the checkpoint first covering the entry.
//	govlog_search_indexed(tree_id, size)
//	    Primary key (tree_id): the entries [0, size) have all their
//	    postings. That transaction advances size with the checkpoint; Open
//	    indexes what a log created before the search index lacks (see
//	    backfill.go).
//
// # Leaf identity
//
// Every leaf is queued with the leaf identity hash
//
//	SHA-256("govlog/leaf-identity/v1" ‖ 0x00 ‖ kind ‖ id)
//
// (kind one byte: 1 decision, 2 execution report), so Trillian itself
// refuses a second leaf for one id, whichever replica queues it: QueueLeaf
// answers ALREADY_EXISTS with the leaf it holds. The leaf bytes of a
// resubmission differ from the original's (another logged_at), the
// identity does not.
//
// # Append
//
// One Append runs these steps; a crash between any two leaves the log
// consistent, and an identical resubmission repairs it:
//
//  1. Reserve. One database transaction reads the govlog_ids and
//     govlog_sequences rows of every name the batch uses (log.NamesOf),
//     has the rule book judge the batch against them (log.Judge), and
//     inserts a govlog_ids row with the leaf of each entry to append (and
//     its govlog_sequences row). The primary keys make racing replicas
//     safe: the loser's transaction fails on the duplicate key and is
//     retried from scratch, and is then judged against the winner's row.
//     From here on, the id is taken: the rule book judges any later entry
//     with that id against the reserved leaf.
//
//  2. Queue. Every new leaf, and the stored leaf of every row this batch
//     relies on whose index is not known yet (an identical resubmission,
//     a parent_id or decision_id named by the batch, and in turn the rows
//     those leaves name), is queued with QueueLeaf, concurrently (up to
//     Config.QueueConcurrency calls in flight): each QueueLeaf is one
//     database transaction in Trillian, and one at a time the batch
//     would wait for each commit in turn. A row reserved by a replica
//     that crashed before queueing is thus queued again by the next
//     Append that needs it; a leaf that was already queued or integrated
//     is deduplicated by Trillian.
//
//     Order matters only along parent_id and decision_id links: an entry
//     must land after the decision it names. Trillian's sequencer orders
//     queued leaves by their queue timestamp, which trillian_log_server
//     takes from its wall clock when QueueLeaf starts
//     (storage/mysql: ORDER BY QueueTimestampNanos, LeafIdentityHash);
//     with one log server whose clock never steps back, a leaf queued
//     after another's QueueLeaf returned does get the higher index, but
//     two log servers with skewed clocks, or a clock stepped back, break
//     that. So the leaves are queued in waves: first every leaf that
//     follows no other leaf of the batch, all at once; a leaf that names
//     one of them is queued only once that one is integrated (its index
//     is then fixed, and lower than any index assigned later). Batches
//     without such links, the usual case, are one wave.
//
//  3. Integrate. Append polls Trillian's tree head until every leaf it
//     queued is in the tree, reading the new part of the tree
//     (GetLeavesByRange) to learn their indices, or looking a leaf up by
//     hash (GetInclusionProofByHash) when Trillian already held it.
//
//  4. Checkpoint. In one transaction, holding the tree's govlog_trees row
//     lock: if the latest stored checkpoint already covers every index of
//     the batch (another replica stored a bigger one), it is the answer;
//     otherwise Append checks that Trillian's tree head is consistent with
//     it (a consistency proof from Trillian, verified), signs the tree
//     head, stores the checkpoint and records the indices in govlog_ids.
//     Checkpoints are therefore stored in increasing size, each consistent
//     with the previous one, and never two for one size; the first stored
//     checkpoint that covers an entry never changes.
//
// A tree head may include other replicas' leaves, or leaves queued by an
// Append that failed: they are signed with it.
//
// # Receipts
//
// Append returns the inclusion proof of each entry it appended in the
// checkpoint it stored, the first to cover it: the receipts come out of
// the commit. Append has read every leaf Trillian integrated since the
// tree head it started from; with the compact range of the tree before
// them, which the Backend keeps up to date across Appends and checks
// against Trillian's root, it knows every node hash those proofs need
// (log.Prover; see receipts.go). The same compact range proves that the
// new tree head extends the previous checkpoint without a consistency
// proof from Trillian. When another replica stored a checkpoint covering
// an entry first, that entry gets no proof from Append and its receipt
// is read as a resubmission's is (Covering, InclusionProof).
//
// # Reads
//
// Every read is bounded by the latest stored checkpoint: Entries and proofs
// never reach beyond its size, Lookup returns an index only once a stored
// checkpoint covers it (an index still NULL in govlog_ids is looked up in
// Trillian by leaf hash within that size, and recorded), and LookupHash
// asks Trillian within that size.
//
// # Failures
//
// Trillian or the database unreachable makes every method fail with an
// error wrapping log.ErrUnavailable (or log.ErrFork when Trillian's tree
// disagrees with a stored checkpoint or with govlog's tables); nothing
// returned by a failed Append was acknowledged. The gRPC connection and
// the database pool reconnect by themselves, so appends resume once both
// are back. When Trillian accepts leaves but does not integrate them (the
// signer is down), Append fails after Config.IntegrationTimeout and Ready
// keeps failing until Trillian's tree grows again.
//
// # Running Trillian
//
// Build trillian_log_server and trillian_log_signer from the Trillian
// version in go.mod with `go build -tags=mysql`, load Trillian's
// storage/mysql/schema/storage.sql into a fresh database, and start both
// with --storage_system=mysql --quota_system=noop; the signer with
// --force_master (one signer) and a short --sequencer_interval (20ms),
// since every Append waits for the signer. CreateTree makes a log tree.
// The project's docs/trillian.md is the operations guide.
// Trillian has no authentication: keep its ports on loopback or a private
// network.
package trillian

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/govlog/govlog/log"
)

// Config configures a Backend. The zero value of each optional field
// selects the default named in its comment.
type Config struct {
	// Addr is the gRPC address (host:port) of trillian_log_server. Open
	// dials it without TLS and Close hangs up. One of Addr and Conn is
	// required.
	Addr string
	// Conn is an open connection to trillian_log_server, used instead of
	// Addr. It stays the caller's: Close does not close it.
	Conn *grpc.ClientConn
	// TreeID is the Trillian log tree (type LOG, see CreateTree). Required.
	TreeID int64
	// DB is the MySQL/MariaDB database for govlog's own tables, normally
	// Trillian's. It stays the caller's: Close does not close it. One of DB
	// and DSN is required.
	DB *sql.DB
	// DSN is a github.com/go-sql-driver/mysql DSN of that database, used
	// instead of DB, e.g. "root@tcp(127.0.0.1:3306)/trillian". Open turns
	// on interpolateParams (one round trip a statement) and sets the
	// timeouts the DSN leaves unset: dial 5s, read and write 30s.
	DSN string
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
	// PollInterval is how often Append reads Trillian's tree head while it
	// waits for its leaves to be integrated, from the first read on; that
	// one comes after half as long as the last wait took (at most 100ms).
	// Default 5ms: the wait is a third of an Append.
	PollInterval time.Duration
	// IntegrationTimeout bounds that wait; beyond it Append fails with
	// ErrUnavailable (the leaves stay queued in Trillian). Default 10s.
	IntegrationTimeout time.Duration
	// RPCTimeout bounds each call to Trillian and Ready's probes.
	// Default 5s.
	RPCTimeout time.Duration
	// QueueConcurrency is the most QueueLeaf calls one Append has in
	// flight. Each is one database transaction in Trillian; its commit
	// (an fsync) is what bounds queueing, and the database commits
	// concurrent transactions together. Default 64.
	QueueConcurrency int

	// hooks are the tests' fault-injection points, set before Open.
	hooks testHooks
}

// Defaults of Config.
const (
	DefaultPollInterval       = 5 * time.Millisecond
	DefaultIntegrationTimeout = 10 * time.Second
	DefaultRPCTimeout         = 5 * time.Second
	DefaultQueueConcurrency   = 64
)

// Linger is the log.Config.Linger of a log.Log on a Backend: a batch costs
// at least one pass of Trillian's signer (trillian_log_signer
// --sequencer_interval), so a batch of a few stragglers waits up to this
// long for the submitters the previous batch answered. Measured in
// docs/trillian.md.
const Linger = 25 * time.Millisecond

// maxRecvMsgSize bounds a gRPC response: a GetLeavesByRange of
// leavesPerCall leaves of at most log.MaxEntryBytes each, with room to spare.
const (
	leavesPerCall  = 256
	maxRecvMsgSize = 64 << 20
)

// Backend is a log.Backend on a Trillian log tree. Create it with Open.
type Backend struct {
	treeID  int64
	logger  *slog.Logger
	client  trillian.TrillianLogClient
	admin   trillian.TrillianAdminClient
	conn    *grpc.ClientConn
	ownConn bool
	db      *sql.DB
	ownDB   bool

	poll, integrationTimeout, rpcTimeout time.Duration
	queueConcurrency                     int

	closed atomic.Bool

	// waited is how long the last wait for integration took (see
	// integration.wait): the next one reads the tree head first after
	// half of it.
	waited atomic.Int64

	// known is the size of the largest checkpoint seen stored (by any
	// replica): reads within it need not ask the database.
	known atomic.Uint64
	// indexed is the largest size seen covered by the search index.
	indexed atomic.Uint64

	// bgMu guards the background backfill (see backfill.go): bgRunning
	// while it runs, bgStopped once Close stopped it. bgCtx is cancelled
	// by Close, which waits for bg.
	bgMu                 sync.Mutex
	bgRunning, bgStopped bool
	bgCtx                context.Context
	bgCancel             context.CancelFunc
	bg                   sync.WaitGroup

	// mu guards stall, which Append sets when Trillian queued its leaves
	// but did not integrate them in time, and Ready clears once Trillian's
	// tree has grown beyond stall.size (its signer is back).
	mu    sync.Mutex
	stall *stall

	// rngMu guards rng, the compact range of Trillian's tree as the last
	// Append left it (nil when unknown; see receipts.go).
	rngMu sync.Mutex
	rng   *compact.Range

	// hooks are fault-injection points for tests; zero in production.
	hooks testHooks
}

var _ log.Backend = (*Backend)(nil)

type stall struct {
	size uint64
	err  error
}

// testHooks simulate crashes between the steps of Append.
type testHooks struct {
	// afterReserve runs once the batch's ids are reserved, before anything
	// is queued; an error fails the Append there.
	afterReserve func() error
	// afterQueue runs once every leaf is queued, before the wait for
	// integration; an error fails the Append there.
	afterQueue func() error
	// noRange makes Append prove its entries with Trillian's proofs, as
	// when it does not know the compact range of the tree.
	noRange bool
	// backfillChunk, when positive, is how many entries a backfill
	// transaction indexes.
	backfillChunk int
	// afterBackfillChunk runs once a backfill chunk up to entry to is
	// committed; an error stops the backfill there.
	afterBackfillChunk func(to uint64) error
	// noIndexedSize makes Append leave govlog_search_indexed alone (to
	// measure what it costs).
	noIndexedSize bool
}

// Open connects to Trillian and to the database, creates or migrates
// govlog's tables, and checks that the tree exists and is consistent with
// the latest checkpoint stored for it (else an error wrapping
// log.ErrFork). An unreachable Trillian or database is an error wrapping
// log.ErrUnavailable.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if (cfg.Addr == "") == (cfg.Conn == nil) {
		return nil, errors.New("failed to open the Trillian backend: exactly one of Addr and Conn is required")
	}
	if (cfg.DSN == "") == (cfg.DB == nil) {
		return nil, errors.New("failed to open the Trillian backend: exactly one of DB and DSN is required")
	}
	if cfg.TreeID == 0 {
		return nil, errors.New("failed to open the Trillian backend: TreeID is required")
	}
	b := &Backend{
		treeID:             cfg.TreeID,
		logger:             cfg.Logger,
		conn:               cfg.Conn,
		db:                 cfg.DB,
		poll:               cfg.PollInterval,
		integrationTimeout: cfg.IntegrationTimeout,
		rpcTimeout:         cfg.RPCTimeout,
		queueConcurrency:   cfg.QueueConcurrency,
		hooks:              cfg.hooks,
	}
	if b.logger == nil {
		b.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if b.poll <= 0 {
		b.poll = DefaultPollInterval
	}
	if b.integrationTimeout <= 0 {
		b.integrationTimeout = DefaultIntegrationTimeout
	}
	if b.rpcTimeout <= 0 {
		b.rpcTimeout = DefaultRPCTimeout
	}
	if b.queueConcurrency <= 0 {
		b.queueConcurrency = DefaultQueueConcurrency
	}
	if b.conn == nil {
		conn, err := dial(cfg.Addr)
		if err != nil {
			return nil, err
		}
		b.conn, b.ownConn = conn, true
	}
	if b.db == nil {
		db, err := openDSN(cfg.DSN)
		if err != nil {
			b.closeConns()
			return nil, err
		}
		b.db, b.ownDB = db, true
	}
	b.client = trillian.NewTrillianLogClient(b.conn)
	b.admin = trillian.NewTrillianAdminClient(b.conn)
	b.bgCtx, b.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := b.open(ctx); err != nil {
		b.stopBackground()
		b.closeConns()
		return nil, err
	}
	return b, nil
}

func (b *Backend) open(ctx context.Context) error {
	if err := migrate(ctx, b.db); err != nil {
		return fmt.Errorf("failed to prepare govlog's tables: %w", err)
	}
	if _, err := b.db.ExecContext(ctx, sqlInsertTree, b.treeID); err != nil {
		return unavailable("register the tree", err)
	}
	if err := b.checkTree(ctx); err != nil {
		return err
	}
	latest, has, err := b.latest(ctx, b.db)
	if err != nil {
		return err
	}
	r, err := b.root(ctx)
	if err != nil {
		return err
	}
	if has {
		if err := b.checkConsistent(ctx, latest, r); err != nil {
			return fmt.Errorf("failed to open tree %d: %w", b.treeID, err)
		}
	}
	// The entries of a log created before the search index existed (or
	// whose indexing was interrupted) are indexed before Open returns.
	if err := b.backfill(ctx); err != nil {
		return fmt.Errorf("failed to index tree %d for search: %w", b.treeID, err)
	}
	b.logger.Info("opened the Trillian log", "tree", b.treeID, "trillian_size", r.size, "checkpoint_size", latest.Size)
	return nil
}

// checkTree checks with the admin API that the tree is an active LOG
// tree. A server without the admin API is given the benefit of the doubt:
// reading the tree head (by open) still checks that the tree exists.
func (b *Backend) checkTree(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, b.rpcTimeout)
	defer cancel()
	tree, err := b.admin.GetTree(rctx, &trillian.GetTreeRequest{TreeId: b.treeID})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unimplemented:
		return nil
	case codes.NotFound:
		return fmt.Errorf("failed to open the Trillian backend: tree %d does not exist: %w", b.treeID, err)
	default:
		return rpcError(fmt.Sprintf("read tree %d", b.treeID), err)
	}
	if tree.GetTreeType() != trillian.TreeType_LOG {
		return fmt.Errorf("failed to open the Trillian backend: tree %d is a %v tree, want LOG", b.treeID, tree.GetTreeType())
	}
	if tree.GetDeleted() || tree.GetTreeState() != trillian.TreeState_ACTIVE {
		return fmt.Errorf("failed to open the Trillian backend: tree %d is %v (deleted: %v), want ACTIVE", b.treeID, tree.GetTreeState(), tree.GetDeleted())
	}
	return nil
}

// dial makes a lazy gRPC connection that reconnects within about two
// seconds of the server coming back. Calls fail fast while it is down.
func dial(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   2 * time.Second,
			},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)),
	)
	if err != nil {
		return nil, fmt.Errorf("failed to set up a connection to Trillian at %q: %w", addr, err)
	}
	return conn, nil
}

// openDSN opens the database pool of a DSN, with parameters interpolated
// client-side (one round trip a statement) and bounded network waits.
func openDSN(dsn string) (*sql.DB, error) {
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("failed to parse the MySQL DSN: %w", err)
	}
	mc.InterpolateParams = true
	if mc.Timeout == 0 {
		mc.Timeout = 5 * time.Second
	}
	if mc.ReadTimeout == 0 {
		mc.ReadTimeout = 30 * time.Second
	}
	if mc.WriteTimeout == 0 {
		mc.WriteTimeout = 30 * time.Second
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("failed to configure the MySQL connection: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(8)
	db.SetConnMaxLifetime(10 * time.Minute)
	return db, nil
}

// Ready implements log.Backend: it reads the latest checkpoint from the
// database and the tree head from Trillian, and fails while Trillian has
// not integrated leaves an Append gave up waiting for.
func (b *Backend) Ready(ctx context.Context) error {
	if b.closed.Load() {
		return fmt.Errorf("%w: the Trillian backend is closed", log.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, b.rpcTimeout)
	defer cancel()
	if _, _, err := b.latest(ctx, b.db); err != nil {
		return err
	}
	r, err := b.root(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.stall; s != nil {
		if r.size <= s.size {
			return fmt.Errorf("%w: Trillian is not integrating leaves (tree size still %d): %w", log.ErrUnavailable, r.size, s.err)
		}
		b.stall = nil
	}
	return nil
}

// Close implements log.Backend. It closes the connections Open made.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.stopBackground()
	if err := b.closeConns(); err != nil {
		return fmt.Errorf("failed to close the Trillian backend: %w", err)
	}
	return nil
}

func (b *Backend) closeConns() error {
	var errs []error
	if b.ownConn && b.conn != nil {
		errs = append(errs, b.conn.Close())
	}
	if b.ownDB && b.db != nil {
		errs = append(errs, b.db.Close())
	}
	return errors.Join(errs...)
}

// identityHash is the Trillian leaf identity hash of an id (see the
// package comment).
func identityHash(kind log.Kind, id string) [32]byte {
	h := sha256.New()
	h.Write([]byte("govlog/leaf-identity/v1"))
	h.Write([]byte{0, byte(kind)})
	h.Write([]byte(id))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// root is a Trillian tree head.
type root struct {
	size uint64
	hash [32]byte
}

// root reads Trillian's latest tree head.
func (b *Backend) root(ctx context.Context) (root, error) {
	rctx, cancel := context.WithTimeout(ctx, b.rpcTimeout)
	defer cancel()
	resp, err := b.client.GetLatestSignedLogRoot(rctx, &trillian.GetLatestSignedLogRootRequest{LogId: b.treeID})
	if err != nil {
		return root{}, rpcError("read Trillian's tree head", err)
	}
	return parseRoot(resp.GetSignedLogRoot())
}

func parseRoot(slr *trillian.SignedLogRoot) (root, error) {
	if slr == nil {
		return root{}, fmt.Errorf("%w: Trillian returned no tree head", log.ErrUnavailable)
	}
	var lr types.LogRootV1
	if err := lr.UnmarshalBinary(slr.GetLogRoot()); err != nil {
		return root{}, fmt.Errorf("%w: failed to parse Trillian's tree head: %w", log.ErrUnavailable, err)
	}
	if len(lr.RootHash) != sha256.Size {
		return root{}, fmt.Errorf("%w: Trillian's root hash is %d bytes, want 32 (is the tree RFC 6962 SHA-256?)", log.ErrUnavailable, len(lr.RootHash))
	}
	return root{size: lr.TreeSize, hash: [32]byte(lr.RootHash)}, nil
}

// checkConsistent checks that Trillian's tree head r extends the stored
// checkpoint cp, with a consistency proof from Trillian. Any disagreement
// is ErrFork, with both tree heads and the proof as evidence.
func (b *Backend) checkConsistent(ctx context.Context, cp log.Checkpoint, r root) error {
	switch {
	case r.size < cp.Size:
		return fmt.Errorf("%w: Trillian's tree has %d leaves, fewer than the %d of the stored checkpoint (root %x)", log.ErrFork, r.size, cp.Size, cp.Hash)
	case r.size == cp.Size:
		if r.hash != cp.Hash {
			return fmt.Errorf("%w: Trillian's root of size %d is %x, the stored checkpoint's is %x", log.ErrFork, r.size, r.hash, cp.Hash)
		}
		return nil
	case cp.Size == 0:
		if cp.Hash != log.EmptyRoot {
			return fmt.Errorf("%w: the stored checkpoint of size 0 has root %x", log.ErrFork, cp.Hash)
		}
		return nil
	}
	p, err := b.consistency(ctx, cp.Size, r.size)
	if err != nil {
		return err
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp.Size, r.size, p, cp.Hash[:], r.hash[:]); err != nil {
		return fmt.Errorf("%w: Trillian's tree head (size %d, root %x) is not consistent with the stored checkpoint (size %d, root %x), proof %x: %w",
			log.ErrFork, r.size, r.hash, cp.Size, cp.Hash, p, err)
	}
	return nil
}

// consistency fetches the consistency proof between two tree sizes from
// Trillian, 0 < from < to.
func (b *Backend) consistency(ctx context.Context, from, to uint64) ([][]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, b.rpcTimeout)
	defer cancel()
	resp, err := b.client.GetConsistencyProof(rctx, &trillian.GetConsistencyProofRequest{
		LogId: b.treeID, FirstTreeSize: int64(from), SecondTreeSize: int64(to),
	})
	if err != nil {
		return nil, rpcError(fmt.Sprintf("get the consistency proof from size %d to %d", from, to), err)
	}
	if resp.GetProof() == nil {
		return nil, fmt.Errorf("%w: Trillian has no consistency proof from size %d to %d (its tree is smaller)", log.ErrUnavailable, from, to)
	}
	return resp.GetProof().GetHashes(), nil
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// latest reads the latest stored checkpoint; has is false when none was
// stored yet.
func (b *Backend) latest(ctx context.Context, q querier) (cp log.Checkpoint, has bool, err error) {
	cp, err = scanCheckpoint(q.QueryRowContext(ctx, sqlLatest, b.treeID))
	if errors.Is(err, sql.ErrNoRows) {
		return log.Checkpoint{}, false, nil
	}
	if err != nil {
		return log.Checkpoint{}, false, unavailable("read the latest checkpoint", err)
	}
	b.saw(cp.Size)
	return cp, true, nil
}

// saw records that a checkpoint of this size is stored.
func (b *Backend) saw(size uint64) { raise(&b.known, size) }

// raise sets v to x unless it holds more already: v only grows.
func raise(v *atomic.Uint64, x uint64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

// scanCheckpoint reads a govlog_checkpoints row and parses its note, which
// must say what the row says. The signature is not verified here: the
// log.Log does that, with the log's key.
func scanCheckpoint(row *sql.Row) (log.Checkpoint, error) {
	var (
		size       uint64
		hash, text []byte
	)
	if err := row.Scan(&size, &hash, &text); err != nil {
		return log.Checkpoint{}, err
	}
	cp, _, err := log.ParseCheckpoint(text, log.CheckpointRules{})
	if err != nil {
		return log.Checkpoint{}, fmt.Errorf("the checkpoint stored for size %d is corrupt: %w", size, err)
	}
	if cp.Size != size || len(hash) != sha256.Size || cp.Hash != [32]byte(hash) {
		return log.Checkpoint{}, fmt.Errorf("the checkpoint stored for size %d says size %d, root %x", size, cp.Size, cp.Hash)
	}
	return cp, nil
}

// rpcError wraps a failed call to Trillian: the log is unavailable.
func rpcError(what string, err error) error {
	return fmt.Errorf("%w: failed to %s: %w", log.ErrUnavailable, what, err)
}

// unavailable wraps a database error.
func unavailable(what string, err error) error {
	return fmt.Errorf("%w: failed to %s: %w", log.ErrUnavailable, what, err)
}
