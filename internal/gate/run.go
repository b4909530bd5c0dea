package gate

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/govlog/govlog/internal/connlimit"
	"github.com/govlog/govlog/internal/keys"
)

// HTTP server limits of the gate's listeners.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 20 * time.Second
)

// Run serves the gate of a validated configuration until ctx is done, then
// shuts down: it stops accepting requests, lets the ones in flight finish
// and sends their reports. listening, when not nil, is called with the
// addresses once both listeners accept connections (admin is nil when
// AdminListen is "off").
func Run(ctx context.Context, cfg *Config, opts Options, listening func(gate, admin net.Addr)) error {
	g, err := New(cfg, opts)
	if err != nil {
		return err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", cfg.Listen, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	servers := []*http.Server{newServer(g, opts)}
	maxConns := cmp.Or(cfg.Limits.MaxConns, DefaultMaxConns)
	ln = connlimit.Wrap(ln, servers[0], connlimit.Config{Max: maxConns,
		PerAddr: cmp.Or(cfg.Limits.MaxConnsPerAddr, max(maxConns/4, 1)), Logger: g.logger})
	listeners := []net.Listener{ln}
	var adminAddr net.Addr
	if cfg.AdminListen != "off" {
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("failed to listen on %s (admin): %w", cfg.AdminListen, err)
		}
		adminAddr = aln.Addr()
		servers = append(servers, newServer(g.adminHandler(), opts))
		listeners = append(listeners, aln)
	}
	admin := "off"
	if adminAddr != nil {
		admin = adminAddr.String() // the port the kernel chose, for ":0"
	}
	g.logger.Info("govlog-gate serving", "addr", ln.Addr().String(), "admin", admin, "mode", cfg.Mode,
		"upstream", cfg.Upstream, "log", cfg.Log.URL, "routes", len(cfg.Routes), "tls", tlsCfg != nil)
	if listening != nil {
		listening(ln.Addr(), adminAddr)
	}
	eg, ectx := errgroup.WithContext(ctx)
	for i, hs := range servers {
		eg.Go(func() error {
			if err := hs.Serve(listeners[i]); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("failed to serve: %w", err)
			}
			return nil
		})
	}
	eg.Go(func() error {
		<-ectx.Done()
		g.logger.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		var errs []error
		for _, hs := range servers {
			if err := hs.Shutdown(sctx); err != nil {
				hs.Close()
				errs = append(errs, err)
			}
		}
		errs = append(errs, g.Wait(sctx))
		return errors.Join(errs...)
	})
	return eg.Wait()
}

func newServer(h http.Handler, opts Options) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slogLogger(opts),
	}
}

// adminHandler serves /metrics, /healthz and /readyz.
func (g *Gate) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	ok := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	return mux
}

// tlsConfig is the listener's TLS configuration, nil without TLS.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if c.TLS == nil {
		return nil, nil
	}
	cert, err := keys.LoadTLS(c.TLS.CertFile, c.TLS.KeyFile)
	if err != nil {
		return nil, err
	}
	t := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.TLS.ClientCAFile != "" {
		pem, err := keys.ReadConfig(c.TLS.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("failed to read the client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in the client CA file %s", c.TLS.ClientCAFile)
		}
		t.ClientCAs, t.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return t, nil
}

func slogLogger(opts Options) *log.Logger {
	if opts.Logger == nil {
		return log.New(io.Discard, "", 0)
	}
	return slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)
}
