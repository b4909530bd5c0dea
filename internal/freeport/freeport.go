// Package freeport finds loopback addresses for the servers that tests and
// tools (the benchmark report, the soak, OPA and Trillian in tests) start
// and tell where to listen.
package freeport

import (
	"fmt"
	"net"
)

// Addrs returns n loopback addresses ("127.0.0.1:port") whose ports were
// free a moment ago, all different: each port is held until all are
// found, because the kernel may hand a port just given up to the next
// Listen, and two servers would then be told the same port.
func Addrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("failed to find a free loopback port: %w", err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
