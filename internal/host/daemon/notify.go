// This file owns sd_notify: telling systemd (Type=notify) that the daemon
// is ready or stopping, without a library.

package daemon

import (
	"fmt"
	"net"
	"os"
)

// notify sends state to $NOTIFY_SOCKET; without it, it does nothing. An
// abstract socket is written "@name" (Go maps the @ to the leading NUL).
func notify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] != '@' && addr[0] != '/' {
		return fmt.Errorf("NOTIFY_SOCKET %q is neither a path nor an abstract name", addr)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("dial NOTIFY_SOCKET: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("write NOTIFY_SOCKET: %w", err)
	}
	return nil
}
