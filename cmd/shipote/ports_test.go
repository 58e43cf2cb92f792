package main

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// freePortPair returns a loopback port P such that P and P+1 were both
// free. It picks below the kernel's ephemeral range: a port from that
// range, free when picked, could be taken by any outgoing connection
// (another member's, another test's) before the daemon binds it.
func freePortPair(t *testing.T) int {
	t.Helper()
	low := ephemeralLow()
	for range 200 {
		p := 10000 + mrand.IntN(max(low-10002, 1))
		a, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		a.Close()
		if err == nil {
			b.Close()
			return p
		}
	}
	t.Fatal("no two free consecutive ports")
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range
// (32768 when it cannot be read).
func ephemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 10002 {
				low = n
			}
		}
	}
	return low
}
