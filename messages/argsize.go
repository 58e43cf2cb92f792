// argsize.go owns the size limits of a command's arguments and environment:
// execve refuses more than the kernel takes (E2BIG), so a command that
// cannot start for its size is refused when it is submitted, naming the
// field.

package messages

import (
	"fmt"
	"strings"
)

const (
	// MaxArgStringBytes is the size of the longest single argument or
	// environment entry (NUL included): the kernel's MAX_ARG_STRLEN.
	MaxArgStringBytes = 128 << 10
	// MaxArgTotalBytes bounds the argv and environment of one command
	// together, counting each string's bytes, its NUL and its pointer. The
	// kernel allows a quarter of the stack limit (2 MiB with the usual
	// 8 MiB); half of that leaves room for a smaller stack limit.
	MaxArgTotalBytes = 1 << 20
)

// argBytes is what strs take on a new program's stack.
func argBytes(strs ...string) int {
	n := 0
	for _, s := range strs {
		n += len(s) + 1 + 8
	}
	return n
}

// checkArgStrings checks every string of a list (argv, envp) against
// MaxArgStringBytes and the list against MaxArgTotalBytes.
func checkArgStrings(field string, strs []string) error {
	for i, s := range strs {
		if len(s)+1 > MaxArgStringBytes {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "is %d bytes; one argument or variable takes at most %d (the kernel's limit)",
				len(s), MaxArgStringBytes-1)
		}
	}
	if n := argBytes(strs...); n > MaxArgTotalBytes {
		return fieldErr(field, "takes %d bytes; a command's argv and environment take at most %d together", n, MaxArgTotalBytes)
	}
	return nil
}

// CheckArgSize checks that the native payload n, started in a workspace
// whose base environment is env, fits the kernel's limits on a new
// program's arguments and environment. prefix is the payload's field
// ("payload", "nodes[2].payload").
func CheckArgSize(prefix string, n *NativePayload, env map[string]string) error {
	if n == nil {
		return nil
	}
	total := argBytes(n.Exec) + argBytes(n.Argv...) + argBytes(n.Envp...)
	for k, v := range env {
		total += len(k) + 1 + len(v) + 1 + 8
	}
	if total > MaxArgTotalBytes {
		f := join(prefix, "native.argv")
		if argBytes(n.Envp...) > argBytes(n.Argv...) {
			f = join(prefix, "native.envp")
		}
		return fieldErr(f, "argv, envp and the workspace's env take %d bytes together; at most %d fit", total, MaxArgTotalBytes)
	}
	return nil
}

// checkPathLen refuses a path the kernel cannot take: longer than PATH_MAX
// (4096 bytes with its NUL) or with an element longer than NAME_MAX (255).
func checkPathLen(field, p string) error {
	if len(p) >= 4096 {
		return fieldErr(field, "is %d bytes; a path takes at most 4095", len(p))
	}
	for el := range strings.SplitSeq(p, "/") {
		if len(el) > 255 {
			return fieldErr(field, "has an element of %d bytes; at most 255", len(el))
		}
	}
	return nil
}
