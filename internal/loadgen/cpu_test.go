package loadgen

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/cputime"
)

func TestParseCPU(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       float64
		ok         bool
	}{
		{"process collector", "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n" +
			"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.34\nprocess_max_fds 1024\n", 12.34, true},
		{"exponent form", "process_cpu_seconds_total 1.5e+06\n", 1.5e6, true},
		{"with a timestamp", "process_cpu_seconds_total\t7 1700000000000\n", 7, true},
		{"a longer name first", "process_cpu_seconds_total_other 99\nprocess_cpu_seconds_total 3\n", 3, true},
		{"missing", "go_goroutines 12\n", 0, false},
		{"garbage value", "process_cpu_seconds_total abc\n", 0, false},
		{"negative", "process_cpu_seconds_total -1\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCPU([]byte(tc.text))
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("parseCPU = %v, %v; want %v, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

// TestServerCPU checks the figure a run reports from the server's
// counter: the CPU used between the two readings, per acknowledgement.
func TestServerCPU(t *testing.T) {
	readings := []string{"10.5", "12.5"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || len(readings) == 0 {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("process_cpu_seconds_total " + readings[0] + "\n"))
		readings = readings[1:]
	}))
	defer srv.Close()
	ep, err := newEndpoint(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{ep: ep}
	r.startCPU(context.Background())
	r.rep.Acknowledged = 4000
	// Some CPU of this process between the readings: the generator's own.
	for t0 := cputime.Process(); cputime.Process()-t0 < 20*time.Millisecond; {
	}
	r.endCPU()
	if r.rep.ServerCPUSeconds != 2 || r.rep.ServerCPUPerDecision != 500 || r.rep.ServerCPUError != "" {
		t.Fatalf("report %+v, want 2 s, 500 µs per decision", r.rep)
	}
	if c := r.rep.ClientCPUSeconds; c < 0.02 || c > 10 || math.Abs(r.rep.ClientCPUPerDecision-c/4000*1e6) > 1e-6 {
		t.Fatalf("client CPU %v s, %v µs per decision: want ≥ 20 ms, per decision its 4000th", c, r.rep.ClientCPUPerDecision)
	}
	// No third reading: the report says why it has no figure.
	r = &runner{ep: ep}
	r.startCPU(context.Background())
	r.endCPU()
	if r.rep.ServerCPUSeconds != 0 || !strings.Contains(r.rep.ServerCPUError, "404") {
		t.Fatalf("report %+v, want an error naming the 404", r.rep)
	}
}
