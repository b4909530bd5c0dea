package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/govlog/govlog/internal/dirlock"
	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/server"
)

// DBFile is the name of the log database in the data directory.
const DBFile = "log.db"

// Config configures Run. The zero value of each optional field selects the
// default named in its comment.
type Config struct {
	// Listen is the TCP address to serve on. It must be a loopback address
	// (127.0.0.0/8, ::1 or localhost) unless authentication is configured
	// (SecurityConfig). Required.
	Listen string
	// DataDir holds the log database and its keys; created (0700) if
	// missing. Run holds an exclusive lock on it (DataDir/lock) while it
	// writes to it. Required.
	DataDir string
	// Origin is the log origin, the name of its note key. Default: the
	// name of the key in DataDir; for a new log, "<hostname>/govlog". Run
	// refuses an Origin that is not the existing key's name.
	Origin string
	// ArtifactTTL is the lifetime of authorization artifacts, whole
	// seconds. Default log.DefaultArtifactTTL.
	ArtifactTTL time.Duration
	// Audience is the "aud" claim of artifacts. Default: none.
	Audience string
	// MaxBatch, MaxPending and CommitTimeout tune the sequencer (see
	// log.Config). Defaults: those of log.Config.
	MaxBatch, MaxPending int
	CommitTimeout        time.Duration
	// SubmitTimeout bounds how long a submission waits for the log.
	// Default 30s.
	SubmitTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown. Default 15s.
	ShutdownTimeout time.Duration
	// Logger receives the server's logs. Default: discard.
	Logger *slog.Logger
	// PprofListen, when set, serves Go's profiling endpoints
	// (/debug/pprof/) on this loopback address. Default: off.
	PprofListen string
	// Backend is the log storage: "sqlite" (embedded, in DataDir) or
	// "trillian" (see Trillian). Default "sqlite".
	Backend string
	// Trillian configures the Trillian backend.
	Trillian TrillianConfig
	// SecurityConfig: authentication, TLS and abuse limits (security.go).
	SecurityConfig
	// WitnessConfig: witness cosigning (witnesses.go).
	WitnessConfig
	// PublishedCheckpoint, when set, is a file holding the last checkpoint
	// known to be published (signed by the log's key): Run refuses to
	// start if the stored log is smaller or disagrees with it at its size
	// (published.go). Default: no check.
	PublishedCheckpoint string
	// NoExplorer turns off the explorer, the web page served at /.
	// Default false: it is served.
	NoExplorer bool
	// OPA configures the endpoint of OPA's decision-log uploads (opa.go).
	// Default: the zero server.OPAConfig.
	OPA server.OPAConfig

	// listening, when set, is called with the listener's address once the
	// server accepts connections (for tests).
	listening func(net.Addr)
}

// Run serves the log described by cfg until ctx is done, then shuts down
// gracefully: readiness and new submissions get 503, submissions in flight
// are answered, the sequencer commits what is queued, the storage closes.
// It returns an error if the server cannot start or fails; nil after a
// graceful shutdown.
//
// Every part Run starts is stopped by the closer it pushes on one stack,
// in the reverse order of starting, whatever way Run ends: a refusal at
// start, a failure of the HTTP server, or ctx.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var parts closers
	defer func() { err = errors.Join(err, parts.close()) }()

	// Everything that can refuse to start does so before anything is
	// created or listened on.
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return err
	}
	auth, closeAuth, err := cfg.buildAuth(ctx, logger)
	if err != nil {
		return err
	}
	parts.push(func() error { closeAuth(); return nil })

	// The embedded log and the cosigned-checkpoint store write to the data
	// directory: one process at a time. With Trillian alone it only holds
	// the keys, which replicas may share.
	writes := cfg.Backend == backendSQLite || cfg.WitnessConfig.policy != nil
	unlock, err := lockDataDir(cfg.DataDir, writes)
	if err != nil {
		return err
	}
	parts.push(unlock)
	k, err := openKeys(cfg.DataDir, &cfg.Origin, logger)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := server.NewMetrics(reg)
	if err != nil {
		return err
	}

	backend, err := openBackend(ctx, &cfg, logger)
	if err != nil {
		return err
	}
	parts.push(backend.Close)
	if backend, err = withCrashPoint(backend, logger); err != nil {
		return err
	}
	l, err := log.New(ctx, log.Config{
		Backend:       backend,
		Signer:        k.Signer,
		Verifier:      k.Verifier,
		ArtifactTTL:   cfg.ArtifactTTL,
		MaxBatch:      cfg.MaxBatch,
		MaxPending:    cfg.MaxPending,
		CommitTimeout: cfg.CommitTimeout,
		Linger:        linger(&cfg),
		Logger:        logger,
		OnBatch:       metrics.ObserveBatch,
	})
	if err != nil {
		return fmt.Errorf("failed to open the log: %w", err)
	}
	// The log owns the backend from here on.
	parts.swap(func() error { return l.Close(context.Background()) })
	if err := checkPublished(ctx, cfg.PublishedCheckpoint, k.Verifier, backend); err != nil {
		return err
	}
	witnessing, err := cfg.witnessing(ctx, cfg.DataDir, l, k, reg, logger)
	if err != nil {
		return err
	}
	if witnessing != nil {
		parts.push(func() error { witnessing.Distributor.Close(); return nil })
	}
	srv, err := server.New(server.Config{
		Log:           l,
		ArtifactKey:   k.Artifact,
		Audience:      cfg.Audience,
		VerifierKey:   k.VerifierKey,
		Logger:        logger,
		Registry:      reg,
		Metrics:       metrics,
		SubmitTimeout: cfg.SubmitTimeout,
		Witnessing:    witnessing,

		Auth:                auth,
		AuthRead:            cfg.AuthRead,
		RateLimit:           cfg.RateLimit,
		RateBurst:           cfg.RateBurst,
		RetiredArtifactKeys: k.Retired,
		OPA:                 cfg.OPA,
		NoExplorer:          cfg.NoExplorer,
	})
	if err != nil {
		return err
	}
	// The server owns the log and the distributor from here on: its Close
	// answers the requests in flight, then closes them.
	if witnessing != nil {
		parts.pop()
	}
	parts.swap(func() error {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Close(sctx); err != nil {
			logger.Error("failed to close the log cleanly", "err", err)
			return err
		}
		return nil
	})

	cp, err := l.Latest(ctx)
	if err != nil {
		return fmt.Errorf("failed to read the latest checkpoint: %w", err)
	}
	if cfg.PprofListen != "" {
		stop, err := servePprof(cfg.PprofListen, logger)
		if err != nil {
			return err
		}
		parts.push(func() error { stop(); return nil })
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", cfg.Listen, err)
	}
	hs := server.NewHTTPServer(srv, cfg.SubmitTimeout, slog.NewLogLogger(logger.Handler(), slog.LevelWarn))
	hs.TLSConfig = tlsCfg
	ln = cfg.limit(ln, hs, logger)
	// Refuse new submissions, then let the ones in flight finish (the log
	// keeps committing) while HTTP stops; the server's closer, next on the
	// stack, then closes the log.
	parts.push(func() error {
		srv.Drain()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			logger.Warn("requests still in flight at the shutdown deadline", "err", err)
			hs.Close()
		}
		return nil
	})
	logger.Info("govlogd serving", "addr", ln.Addr().String(), "origin", cfg.Origin,
		"data", cfg.DataDir, "tree_size", cp.Size, "backend", cfg.Backend, "tls", tlsCfg != nil,
		"retired_artifact_keys", len(k.Retired))
	cfg.announce(logger, cfg.Listen)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if tlsCfg != nil {
			err = hs.ServeTLS(ln, "", "")
		} else {
			err = hs.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		logger.Error("the HTTP server failed", "err", err)
		return fmt.Errorf("failed to serve: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("shutting down")
		err := parts.close()
		logger.Info("stopped")
		return err
	})
	if cfg.listening != nil {
		cfg.listening(ln.Addr())
	}
	return g.Wait()
}

// closers are the functions that stop what Run started, called in the
// reverse order of push, once: whichever of Run's return and its shutdown
// goroutine comes first runs them.
type closers struct {
	mu  sync.Mutex
	fns []func() error
}

// push adds the closer of a part just started.
func (c *closers) push(f func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = append(c.fns, f)
}

// pop drops the last closer, without calling it: its part is now owned
// (and closed) by another.
func (c *closers) pop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = c.fns[:len(c.fns)-1]
}

// swap replaces the last closer: its part is now owned by one that closes
// it with its own.
func (c *closers) swap(f func() error) {
	c.pop()
	c.push(f)
}

// close calls every closer, the last pushed first, and returns their
// errors joined.
func (c *closers) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for i := len(c.fns) - 1; i >= 0; i-- {
		errs = append(errs, c.fns[i]())
	}
	c.fns = nil
	return errors.Join(errs...)
}

// servePprof serves the profiling endpoints on their own listener, never
// on the API's, and returns the function that stops it.
func servePprof(addr string, logger *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s for pprof: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: server.ReadHeaderTimeout}
	go hs.Serve(ln)
	logger.Info("serving pprof", "addr", ln.Addr().String())
	return func() { hs.Close() }, nil
}

// validate checks cfg and fills in defaults.
func (cfg *Config) validate() error {
	if err := cfg.SecurityConfig.validate(); err != nil {
		return err
	}
	if !cfg.authConfigured() {
		if err := checkLoopback(cfg.Listen); err != nil {
			return err
		}
	} else if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return fmt.Errorf("invalid --listen %q: %w", cfg.Listen, err)
	}
	if cfg.PprofListen != "" {
		if err := checkLoopback(cfg.PprofListen); err != nil {
			return fmt.Errorf("--pprof: %w", err)
		}
	}
	if cfg.DataDir == "" {
		return errors.New("the data directory (--data) is required")
	}
	if err := cfg.validateBackend(); err != nil {
		return err
	}
	if err := cfg.WitnessConfig.validate(); err != nil {
		return err
	}
	if cfg.Origin != "" {
		if err := keys.ValidName(cfg.Origin); err != nil {
			return fmt.Errorf("invalid --origin: %w", err)
		}
	}
	if cfg.ArtifactTTL == 0 {
		cfg.ArtifactTTL = log.DefaultArtifactTTL
	}
	if cfg.ArtifactTTL < time.Second || cfg.ArtifactTTL%time.Second != 0 {
		return fmt.Errorf("--artifact-ttl must be a whole number of seconds, at least 1s; got %v", cfg.ArtifactTTL)
	}
	if cfg.MaxBatch < 0 || cfg.MaxPending < 0 || cfg.CommitTimeout < 0 || cfg.SubmitTimeout < 0 || cfg.ShutdownTimeout < 0 {
		return errors.New("--max-batch, --max-pending and the timeouts must not be negative")
	}
	if cfg.SubmitTimeout == 0 {
		cfg.SubmitTimeout = 30 * time.Second
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	return nil
}

// checkLoopback refuses a listen address that is not loopback: without
// authentication, anyone who can reach the server can write to the log.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid --listen %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing --listen %q: authentication is not configured, so govlogd only listens on "+
		"a loopback address (127.0.0.0/8, ::1 or localhost), for example 127.0.0.1:8080; "+
		"configure --auth-jwks or --auth-tokens to serve other addresses", addr)
}

// lockDataDir creates dir (0700) if missing and, when writes is set,
// checks that it is writable and locks it for this process (released by
// the returned function). A directory another process holds is refused,
// naming that process.
func lockDataDir(dir string, writes bool) (release func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create the data directory: %w", err)
	}
	if !writes {
		return func() error { return nil }, nil
	}
	if err := checkWritable(dir); err != nil {
		return nil, err
	}
	lock, err := dirlock.Acquire(dir, "govlogd")
	if err != nil {
		return nil, err
	}
	return lock.Release, nil
}

// openKeys loads the log's keys from dir, generating them on first start,
// and settles the origin: *origin, when set, must be the key's name; when
// unset it becomes the key's name, or for new keys defaultOrigin(). It
// refuses a dir it cannot write to when the keys are to be generated.
func openKeys(dir string, origin *string, logger *slog.Logger) (*keys.Keys, error) {
	keys.WarnOpenDir(logger, dir)
	present, err := keys.Present(dir)
	if err != nil {
		return nil, err
	}
	if !present {
		if err := checkWritable(dir); err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(dir, DBFile)); !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s holds a log database but no keys: restore its keys (a log's key is its identity)", dir)
		}
		if *origin == "" {
			*origin = defaultOrigin()
		}
		if err := keys.Generate(dir, *origin); err != nil {
			return nil, err
		}
		logger.Info("generated the log's keys: the origin is the log's identity from now on", "dir", dir, "origin", *origin,
			"verifier_key_file", filepath.Join(dir, keys.VerifierFile))
	}
	k, err := keys.Load(dir)
	if err != nil {
		return nil, err
	}
	name := k.Signer.Name()
	switch *origin {
	case "":
		*origin = name
	case name:
	default:
		return nil, fmt.Errorf("--origin %q contradicts the log key %s, which is for origin %q: a log's key is its identity; "+
			"omit --origin (it defaults to the key's name) or use another --data directory", *origin, filepath.Join(dir, keys.SignerFile), name)
	}
	return k, nil
}

// checkWritable fails, naming dir, when a file cannot be created in it.
// On a read-only file system SQLite would otherwise fail later with a
// misleading "unable to open database file: no such file or directory".
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".govlogd-write-check-")
	if err != nil {
		if errors.Is(err, syscall.EROFS) {
			return fmt.Errorf("the data directory %s is on a read-only file system: govlogd writes to it "+
				"(the log database, the keys on first start); mount it read-write: %w", dir, err)
		}
		return fmt.Errorf("the data directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("the data directory %s is not writable: %w", dir, err)
	}
	return nil
}
