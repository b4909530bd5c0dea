package freeport

import (
	"net"
	"testing"
)

func TestAddrsDifferentAndFree(t *testing.T) {
	addrs, err := Addrs(8)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s given twice: %v", a, addrs)
		}
		seen[a] = true
		l, err := net.Listen("tcp", a) // given up again when Addrs returned
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		l.Close()
	}
}
