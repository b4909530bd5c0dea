package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/govlog/govlog/internal/loadgen"
	"github.com/govlog/govlog/internal/procstat"
)

// sample is what one interval measured; the process figures are read at
// its end, the load figures cover the interval.
type sample struct {
	At time.Duration // since the load started

	// govlogd
	RSSMiB, HeapMiB float64
	Goroutines      int
	// FDs counts the open descriptors, Sockets those that are sockets:
	// mostly the load's keep-alive connections, each also holding a
	// goroutine, whose number follows the latency spikes.
	FDs, Sockets     int
	TreeSize         uint64
	Cosigned         uint64 // newest tree size whose cosignatures satisfy the policy
	LogDB, LogWAL    int64  // bytes of log.db and log.db-wal
	CosDB, CosWAL    int64  // bytes of cosigned.db and cosigned.db-wal
	PushesOK, PushNo int    // witness pushes cosigned / failed in the interval

	// single decisions, open loop
	Requests, Acked     int
	Rate                float64 // acknowledged single decisions per second
	P50, P99, P999, Max float64 // ms, from the due time
	Late                int

	// the rest of the load
	Batches, BatchDecisions, Executions, Reads int
	ReadP99                                    float64 // ms
	Errors, VerifyFailures                     int
	Audits                                     int
	AuditSeconds                               float64 // of the last audit in the interval
	AuditEntries                               uint64

	Witnesses []witnessSample
}

// Lag is how far the policy-satisfying cosigned checkpoint is behind the
// tree, in entries.
func (s sample) Lag() int64 { return int64(s.TreeSize) - int64(s.Cosigned) }

// witnessSample is one govlog-witness at the end of an interval.
type witnessSample struct {
	RSSMiB                   float64
	Goroutines, FDs, Sockets int
	DBBytes                  int64 // witness.db and its WAL
	Lag                      int64 // govlogd's tree size minus the size it cosigned
}

// sampler reads the processes' figures.
type sampler struct {
	c  *cluster
	hc *http.Client
	// pushes are the cumulative cosigned and failed pushes at the last
	// sample.
	pushesOK, pushesNo float64
}

// take fills in s's process figures; what cannot be read is an error.
func (sp *sampler) take(ctx context.Context, s *sample) error {
	var errs []string
	d := sp.c.govlogd
	s.RSSMiB = procstat.RSSMiB(d.pid())
	fds, err := procstat.OpenFDs(d.pid())
	if err != nil {
		errs = append(errs, err.Error())
	}
	s.FDs, s.Sockets = fds.Total, fds.Sockets
	m, err := metrics(ctx, sp.hc, d.url+"/metrics")
	if err != nil {
		errs = append(errs, fmt.Sprintf("failed to read govlogd's metrics: %v", err))
	} else {
		s.Goroutines = int(m["go_goroutines"])
		s.HeapMiB = m["go_memstats_heap_inuse_bytes"] / (1 << 20)
		s.TreeSize = uint64(m["govlog_tree_size"])
		s.Cosigned = uint64(m["govlog_witness_cosigned_tree_size"])
		var ok, no float64
		for k, v := range m {
			if strings.HasPrefix(k, "govlog_witness_pushes_total{") {
				if strings.Contains(k, `result="cosigned"`) {
					ok += v
				} else {
					no += v
				}
			}
		}
		s.PushesOK, s.PushNo = int(ok-sp.pushesOK), int(no-sp.pushesNo)
		sp.pushesOK, sp.pushesNo = ok, no
	}
	s.LogDB, s.LogWAL = fileSize(d.data, "log.db"), fileSize(d.data, "log.db-wal")
	s.CosDB, s.CosWAL = fileSize(d.data, "cosigned.db"), fileSize(d.data, "cosigned.db-wal")
	s.Witnesses = make([]witnessSample, len(sp.c.witnesses))
	for i, w := range sp.c.witnesses {
		ws := &s.Witnesses[i]
		ws.RSSMiB = procstat.RSSMiB(w.pid())
		fds, err := procstat.OpenFDs(w.pid())
		if err != nil {
			errs = append(errs, err.Error())
		}
		ws.FDs, ws.Sockets = fds.Total, fds.Sockets
		if m, err := metrics(ctx, sp.hc, w.url+"/metrics"); err != nil {
			errs = append(errs, fmt.Sprintf("failed to read the metrics of %s: %v", w.name, err))
		} else {
			ws.Goroutines = int(m["go_goroutines"])
		}
		ws.DBBytes = fileSize(w.data, "witness.db") + fileSize(w.data, "witness.db-wal")
		if size, err := witnessedSize(ctx, sp.hc, w.url); err != nil {
			errs = append(errs, err.Error())
		} else {
			ws.Lag = int64(s.TreeSize) - int64(size)
		}
	}
	if len(errs) > 0 && ctx.Err() == nil {
		return fmt.Errorf("sampling: %s", strings.Join(errs, "; "))
	}
	return nil
}

func fileSize(dir, name string) int64 {
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// singles fills in s's single-decision figures from one loadgen run.
func (s *sample) singles(rep *loadgen.Report, seconds float64) {
	s.Requests, s.Acked, s.Late = rep.Requests, rep.Acknowledged, rep.Late
	s.Rate = float64(rep.Acknowledged) / seconds
	l := rep.LatencyMS
	s.P50, s.P99, s.P999, s.Max = l.P50, l.P99, l.P999, l.Max
}

// background fills in s's figures of the rest of the load.
func (s *sample) background(c *counts) {
	s.Batches, s.BatchDecisions, s.Executions = c.Batches, c.BatchDecisions, c.Executions
	for _, n := range c.Reads {
		s.Reads += n
	}
	if len(c.readLat) > 0 {
		s.ReadP99 = percentileMS(c.readLat, 0.99)
	}
	s.Errors = c.errorCount()
	s.VerifyFailures = c.VerifyFailures
	s.Audits = len(c.Audits)
	if s.Audits > 0 {
		a := c.Audits[len(c.Audits)-1]
		s.AuditSeconds, s.AuditEntries = a.Seconds, a.Entries
	}
}
