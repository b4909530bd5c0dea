package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/govlog/govlog/internal/cputime"
)

// cpuMetric is the Prometheus process collector's counter of the CPU time
// (user and system) a process has used, in seconds.
const cpuMetric = "process_cpu_seconds_total"

// serverCPU reads the server's process_cpu_seconds_total from GET /metrics
// (its first 16 MiB).
func serverCPU(c *conn) (float64, error) {
	defer c.close()
	c.limit = 16 << 20
	var buf []byte
	body, err := c.get("/metrics", &buf)
	if err != nil {
		return 0, fmt.Errorf("failed to fetch /metrics: %w", err)
	}
	return parseCPU(body)
}

// parseCPU finds the value of process_cpu_seconds_total in a Prometheus
// text exposition: the metric has no labels, so its sample line is the
// name, white space and the value.
func parseCPU(text []byte) (float64, error) {
	s := bufio.NewScanner(bytes.NewReader(text))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		rest, ok := bytes.CutPrefix(s.Bytes(), []byte(cpuMetric))
		if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		f := bytes.Fields(rest)
		v, err := strconv.ParseFloat(string(f[0]), 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("/metrics has a bad %s sample %q", cpuMetric, rest)
		}
		return v, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("failed to read /metrics: %w", err)
	}
	return 0, errors.New("/metrics has no " + cpuMetric)
}

// startCPU reads the server's CPU time, then the generator's own, at the
// start of the measured part of a run. A server that does not export its
// CPU time gets a report without the figure, and the reason.
func (r *runner) startCPU(ctx context.Context) {
	r.cpu0, r.cpuErr = serverCPU(r.ep.conn(ctx, setupTimeout))
	r.client0 = cputime.Process()
}

// endCPU reads the generator's CPU time, then the server's, once every
// request of the run was answered, and fills in the report's figures.
func (r *runner) endCPU() {
	r.rep.ClientCPUSeconds = (cputime.Process() - r.client0).Seconds()
	if r.rep.Acknowledged > 0 {
		r.rep.ClientCPUPerDecision = r.rep.ClientCPUSeconds / float64(r.rep.Acknowledged) * 1e6
	}
	if r.cpuErr == nil {
		var cpu1 float64
		// The run's context may be over (a deadline): the reading is
		// still wanted.
		if cpu1, r.cpuErr = serverCPU(r.ep.conn(context.Background(), setupTimeout)); r.cpuErr == nil {
			r.rep.ServerCPUSeconds = cpu1 - r.cpu0
			if r.rep.Acknowledged > 0 {
				r.rep.ServerCPUPerDecision = r.rep.ServerCPUSeconds / float64(r.rep.Acknowledged) * 1e6
			}
			return
		}
	}
	r.rep.ServerCPUError = r.cpuErr.Error()
}
