package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/govlog/govlog/internal/distributor"
	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/server"
	"github.com/govlog/govlog/verifier"
)

// CosignedDBFile is the name of the store of cosigned checkpoints in the
// data directory.
const CosignedDBFile = "cosigned.db"

// Witness modes.
const (
	witnessAsync = "async"
	witnessSync  = "sync"
)

// WitnessConfig configures witness cosigning. The zero value of each field
// selects the default named in its comment.
type WitnessConfig struct {
	// WitnessPolicy is the path of a witness policy file (the format of
	// github.com/transparency-dev/formats/witness, with each witness's
	// URL): every new checkpoint is pushed to its witnesses. Default: none.
	WitnessPolicy string
	// WitnessMode is "async" (receipts carry the log's signature at once;
	// cosignatures follow) or "sync" (a submission is answered only on a
	// checkpoint that satisfies the policy). Default "async".
	WitnessMode string
	// WitnessTimeout bounds how long a sync-mode submission waits for the
	// quorum before it gets 503. Default 10s.
	WitnessTimeout time.Duration
	// WitnessInterval is, in async mode, the least time between two
	// checkpoints pushed to the witnesses. Default 1s; sync mode pushes
	// every checkpoint at once.
	WitnessInterval time.Duration

	// policy is WitnessPolicy parsed by validate.
	policy *verifier.Policy
}

func addWitnessFlags(fs *flag.FlagSet, c *WitnessConfig) {
	fs.StringVar(&c.WitnessPolicy, "witness-policy", "", "witness policy `file`: push every checkpoint to its witnesses and collect their cosignatures (default none)")
	fs.StringVar(&c.WitnessMode, "witness-mode", witnessAsync, "async: receipts at once, cosignatures follow; sync: answer a submission only on a checkpoint that satisfies the policy (503 when the quorum is not reached in time)")
	fs.DurationVar(&c.WitnessTimeout, "witness-timeout", 10*time.Second, "in sync mode, how long a submission waits for the witness quorum")
	fs.DurationVar(&c.WitnessInterval, "witness-interval", time.Second, "in async mode, the least time between two checkpoints pushed to the witnesses (sync mode pushes each at once)")
}

// validate checks the witness flags and reads the policy file.
func (c *WitnessConfig) validate() error {
	switch c.WitnessMode {
	case "":
		c.WitnessMode = witnessAsync
	case witnessAsync, witnessSync:
	default:
		return fmt.Errorf("--witness-mode must be async or sync, not %q", c.WitnessMode)
	}
	if c.WitnessTimeout < 0 {
		return errors.New("--witness-timeout must not be negative")
	}
	if c.WitnessTimeout == 0 {
		c.WitnessTimeout = 10 * time.Second
	}
	if c.WitnessInterval < 0 {
		return errors.New("--witness-interval must not be negative")
	}
	if c.WitnessPolicy == "" {
		if c.WitnessMode == witnessSync {
			return errors.New("--witness-mode sync needs a --witness-policy")
		}
		return nil
	}
	text, err := keys.ReadConfig(c.WitnessPolicy)
	if err != nil {
		return fmt.Errorf("failed to read the witness policy: %w", err)
	}
	if c.policy, err = verifier.ParsePolicy(text); err != nil {
		return fmt.Errorf("a configuration error in --witness-policy %s: %w", c.WitnessPolicy, err)
	}
	for _, w := range c.policy.Witnesses() {
		// A URL that is not an absolute http(s) URL would fail only at the
		// first push (the policy format itself does not require one).
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("invalid --witness-policy %s: witness %s: %q is not an http or https URL to push checkpoints to", c.WitnessPolicy, w.Key.Name(), w.URL)
		}
	}
	if len(c.policy.Witnesses()) == 0 && c.WitnessMode == witnessSync {
		return fmt.Errorf("--witness-policy %s names no witness (quorum none): --witness-mode sync would cosign nothing", c.WitnessPolicy)
	}
	return nil
}

// witnessing starts the distribution of the log's checkpoints; nil when
// no policy is configured.
func (c *WitnessConfig) witnessing(ctx context.Context, dataDir string, l *log.Log, k *keys.Keys,
	reg prometheus.Registerer, logger *slog.Logger) (*server.Witnessing, error) {
	if c.policy == nil {
		return nil, nil
	}
	cfg := distributor.Config{
		Source:      l.Backend(),
		LogKey:      k.Verifier,
		Policy:      c.policy,
		Database:    filepath.Join(dataDir, CosignedDBFile),
		PushTimeout: min(c.WitnessTimeout, 10*time.Second),
		Logger:      logger,
		Registerer:  reg,
	}
	if c.WitnessMode == witnessAsync {
		cfg.RoundInterval = c.WitnessInterval
	}
	d, err := distributor.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to start witnessing: %w", err)
	}
	var names []string
	for _, w := range c.policy.Witnesses() {
		names = append(names, w.Key.Name()+" "+w.URL)
	}
	logger.Info("witnessing checkpoints", "policy", c.WitnessPolicy, "mode", c.WitnessMode,
		"timeout", c.WitnessTimeout, "witnesses", names)
	return &server.Witnessing{Distributor: d, Sync: c.WitnessMode == witnessSync, Timeout: c.WitnessTimeout}, nil
}
