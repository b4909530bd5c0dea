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
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

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
	// missing. Required.
	DataDir string
	// Origin is the log origin, the name of its note key. Required.
	Origin string
	// ArtifactTTL is the lifetime of authorization artifacts, whole
	// seconds. Default 300s.
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
	// OPA configures the endpoint of OPA's decision-log uploads (opa.go).
	// Default: the zero server.OPAConfig.
	OPA server.OPAConfig

	// listening, when set, is called with the listener's address once the
	// server accepts connections (for tests).
	listening func(net.Addr)
}

// HTTP server limits.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second // a 4 MiB batch on a slow link
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// Run serves the log described by cfg until ctx is done, then shuts down
// gracefully: readiness and new submissions get 503, submissions in flight
// are answered, the sequencer commits what is queued, the storage closes.
// It returns an error if the server cannot start or fails; nil after a
// graceful shutdown.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

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
	defer closeAuth()

	// The embedded log and the cosigned-checkpoint store write to the data
	// directory; with Trillian alone it only holds the keys.
	writes := cfg.Backend == backendSQLite || cfg.WitnessConfig.policy != nil
	k, err := openKeys(cfg.DataDir, cfg.Origin, writes, logger)
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
	wrapped, err := withCrashPoint(backend, logger)
	if err != nil {
		backend.Close()
		return err
	}
	backend = wrapped
	l, err := log.New(ctx, log.Config{
		Backend:       backend,
		Signer:        k.Signer,
		Verifier:      k.Verifier,
		ArtifactTTL:   cfg.ArtifactTTL,
		MaxBatch:      cfg.MaxBatch,
		MaxPending:    cfg.MaxPending,
		CommitTimeout: cfg.CommitTimeout,
		Logger:        logger,
		OnBatch:       metrics.ObserveBatch,
	})
	if err != nil {
		backend.Close()
		return fmt.Errorf("failed to open the log: %w", err)
	}
	if err := checkPublished(ctx, cfg.PublishedCheckpoint, k.Verifier, backend); err != nil {
		l.Close(context.Background())
		return err
	}
	witnessing, err := cfg.witnessing(ctx, cfg.DataDir, l, k, reg, logger)
	if err != nil {
		l.Close(context.Background())
		return err
	}
	srv, err := server.New(server.Config{
		Log:           l,
		ArtifactKey:   k.Artifact,
		Audience:      cfg.Audience,
		ArtifactTTL:   cfg.ArtifactTTL,
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
	})
	if err != nil {
		if witnessing != nil {
			witnessing.Distributor.Close()
		}
		l.Close(context.Background())
		return err
	}
	closeLog := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		return srv.Close(cctx)
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		closeLog()
		return fmt.Errorf("failed to listen on %s: %w", cfg.Listen, err)
	}
	hs := &http.Server{
		TLSConfig:         tlsCfg,
		Handler:           srv,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      cfg.SubmitTimeout + 30*time.Second,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// "OPTIONS *" is the API's to answer (405), like every OPTIONS.
		DisableGeneralOptionsHandler: true,
	}
	ln = cfg.limit(ln, hs, logger)
	cp, err := l.Latest(ctx)
	if err != nil {
		ln.Close()
		closeLog()
		return fmt.Errorf("failed to read the latest checkpoint: %w", err)
	}
	logger.Info("govlogd serving", "addr", ln.Addr().String(), "origin", cfg.Origin,
		"data", cfg.DataDir, "tree_size", cp.Size, "backend", cfg.Backend, "tls", tlsCfg != nil,
		"retired_artifact_keys", len(k.Retired))
	cfg.announce(logger, cfg.Listen)

	if cfg.PprofListen != "" {
		stop, err := servePprof(cfg.PprofListen, logger)
		if err != nil {
			hs.Close()
			closeLog()
			return err
		}
		defer stop()
	}

	served := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			served <- hs.ServeTLS(ln, "", "")
			return
		}
		served <- hs.Serve(ln)
	}()
	if cfg.listening != nil {
		cfg.listening(ln.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case serveErr = <-served:
		logger.Error("the HTTP server failed", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Refuse new submissions, then let the ones in flight finish (the log
	// keeps committing) while HTTP stops, then close the log.
	srv.Drain()
	if err := hs.Shutdown(sctx); err != nil {
		logger.Warn("requests still in flight at the shutdown deadline", "err", err)
		hs.Close()
	}
	if err := srv.Close(sctx); err != nil {
		logger.Error("failed to close the log cleanly", "err", err)
		return errors.Join(serveErr, err)
	}
	logger.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("failed to serve: %w", serveErr)
	}
	return nil
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
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
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
	if err := keys.ValidName(cfg.Origin); err != nil {
		return fmt.Errorf("invalid --origin: %w", err)
	}
	if cfg.ArtifactTTL == 0 {
		cfg.ArtifactTTL = 300 * time.Second
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

// openKeys loads the log's keys from dir, creating dir and generating them
// on first start, and checks that they are origin's. It refuses a dir it
// cannot write to when writes is set or the keys are to be generated.
func openKeys(dir, origin string, writes bool, logger *slog.Logger) (*keys.Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create the data directory: %w", err)
	}
	keys.WarnOpenDir(logger, dir)
	present, err := keys.Present(dir)
	if err != nil {
		return nil, err
	}
	if writes || !present {
		if err := checkWritable(dir); err != nil {
			return nil, err
		}
	}
	if !present {
		if _, err := os.Stat(filepath.Join(dir, DBFile)); !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s holds a log database but no keys: restore its keys (a log's key is its identity)", dir)
		}
		if err := keys.Generate(dir, origin); err != nil {
			return nil, err
		}
		logger.Info("generated the log's keys", "dir", dir, "origin", origin,
			"verifier_key_file", filepath.Join(dir, keys.VerifierFile))
	}
	k, err := keys.Load(dir)
	if err != nil {
		return nil, err
	}
	if name := k.Signer.Name(); name != origin {
		return nil, fmt.Errorf("the log key %s is for origin %q, not %q: a log's key is its identity; "+
			"pass --origin %q or use another --data directory", filepath.Join(dir, keys.SignerFile), name, origin, name)
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
