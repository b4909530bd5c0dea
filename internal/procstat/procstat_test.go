package procstat

import (
	"net"
	"os"
	"runtime"
	"testing"
)

func TestSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	if rss := RSSMiB(os.Getpid()); rss <= 0 || rss > 1<<20 {
		t.Errorf("RSSMiB(self) = %v", rss)
	}
	before, err := OpenFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	after, err := OpenFDs(os.Getpid())
	if err != nil || after.Total < before.Total+2 || after.Sockets < before.Sockets+1 || after.Files() < before.Files()+1 {
		t.Errorf("OpenFDs: %+v before opening a file and a socket, %+v (%v) after", before, after, err)
	}
	t.Logf("CPU: %q", CPUModel())
	if RSSMiB(-1) != 0 {
		t.Error("RSSMiB of no process is not 0")
	}
	if _, err := OpenFDs(-1); err == nil {
		t.Error("OpenFDs of no process: no error")
	}
}
