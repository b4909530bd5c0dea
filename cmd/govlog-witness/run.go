package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/govlog/govlog/internal/connlimit"
	"github.com/govlog/govlog/internal/dirlock"
	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/witness"
)

// DBFile is the name of the state database in the data directory.
const DBFile = "witness.db"

// Config configures Run. The zero value of each optional field selects the
// default named in its comment.
type Config struct {
	// Listen is the TCP address to serve on. Required.
	Listen string
	// DataDir holds the witness key and state; created (0700) if missing.
	// Run holds an exclusive lock on it (DataDir/lock). Required.
	DataDir string
	// Name is the witness name. Required when the key is generated;
	// otherwise, when set, it must be the key's name. Default: the key's
	// name.
	Name string
	// LogKeys are the note verifier keys of the logs to witness. Required.
	LogKeys []string
	// Logger receives the witness's logs. Default: discard.
	Logger *slog.Logger
	// ShutdownTimeout bounds the graceful shutdown. Default 10s.
	ShutdownTimeout time.Duration
	// MaxConns bounds the connections served at once, MaxConnsPerAddr
	// those of one client address (connlimit). Defaults 4096 and 1024.
	MaxConns, MaxConnsPerAddr int

	// listening, when set, is called with the listener's address once the
	// server accepts connections (for tests).
	listening func(net.Addr)
}

// HTTP server limits. A request is small (witness.MaxBodyBytes).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Run serves the witness described by cfg until ctx is done, then shuts
// down gracefully. It returns an error if the witness cannot start or
// fails; nil after a graceful shutdown.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Listen == "" || cfg.DataDir == "" || len(cfg.LogKeys) == 0 {
		return errors.New("--listen, --data and at least one --log-key are required")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("failed to create the data directory: %w", err)
	}
	lock, err := dirlock.Acquire(cfg.DataDir, "govlog-witness")
	if err != nil {
		return err
	}
	defer lock.Release()
	skey, err := openKey(cfg.DataDir, cfg.Name, logger)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	w, err := witness.New(ctx, witness.Config{
		Key:        skey,
		Logs:       cfg.LogKeys,
		Database:   filepath.Join(cfg.DataDir, DBFile),
		Logger:     logger,
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	defer w.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		io.WriteString(rw, `{"status":"ok"}`+"\n")
	})
	mux.Handle("/", w.Handler())

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", cfg.Listen, err)
	}
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln = connlimit.Wrap(ln, hs, connlimit.Config{Max: cmp.Or(cfg.MaxConns, 4096),
		PerAddr: cmp.Or(cfg.MaxConnsPerAddr, 1024), Logger: logger})
	logs, err := w.Logs(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	for _, l := range logs {
		logger.Info("witnessing log", "origin", l.Origin, "tree_size", l.Size, "keys", l.VerifierKeys)
	}
	logger.Info("govlog-witness serving", "addr", ln.Addr().String(), "name", w.Name(),
		"verifier_key", w.VerifierKey(), "data", cfg.DataDir)

	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
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
	if err := hs.Shutdown(sctx); err != nil {
		logger.Warn("requests still in flight at the shutdown deadline", "err", err)
		hs.Close()
	}
	logger.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("failed to serve: %w", serveErr)
	}
	return nil
}

// readLogKeys reads each --log-key: the key text, or a file holding it.
func readLogKeys(args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for _, a := range args {
		k, err := readLogKey(a)
		if err != nil {
			return nil, fmt.Errorf("--log-key: %w", err)
		}
		out = append(out, k)
	}
	return out, nil
}

// readLogKey reads one --log-key. A note verifier key has the form
// name+keyid+base64, so an argument with two '+' is taken as the key text
// (witness.New validates it) and anything else as the name of a file.
func readLogKey(arg string) (string, error) {
	if strings.Count(arg, "+") >= 2 {
		return arg, nil
	}
	data, err := keys.ReadConfig(arg)
	if err != nil {
		return "", fmt.Errorf("%q is neither a note verifier key nor a readable file: %w", arg, err)
	}
	k := strings.TrimSpace(string(data))
	if strings.Count(k, "+") < 2 || strings.ContainsAny(k, "\n ") {
		return "", fmt.Errorf("%s does not hold one note verifier key", arg)
	}
	return k, nil
}
