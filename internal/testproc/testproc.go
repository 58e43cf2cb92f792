// Package testproc lets a test binary re-execute itself as a helper
// process (a CPU spinner, a memory allocator, or a mode of the package's
// own), so that tests measure and limit real processes. Only tests import
// it.
package testproc

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
)

// MiBEnv is the environment variable giving Alloc its size in MiB.
const MiBEnv = "SHIPOTE_TEST_MIB"

// Run, called first in TestMain, returns at once when the environment
// variable env is unset (the binary runs its tests). Otherwise the binary
// is a helper: Run runs the mode env names, from modes or the shared ones
// ("spin", "alloc"), and exits.
func Run(env string, modes map[string]func()) {
	mode := os.Getenv(env)
	if mode == "" {
		return
	}
	if f, ok := modes[mode]; ok {
		f()
		os.Exit(0)
	}
	switch mode {
	case "spin":
		Spin()
	case "alloc":
		Alloc()
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	os.Exit(2)
}

// Command returns a command re-executing the test binary in mode, with
// PATH and extra ("K=V") as its whole environment.
func Command(env, mode string, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append([]string{env + "=" + mode, "PATH=" + os.Getenv("PATH")}, extra...)
	return cmd
}

// Spin burns CPU until killed.
func Spin() {
	for i := 0; ; i++ {
		_ = i * i
	}
}

// Alloc allocates and touches $SHIPOTE_TEST_MIB MiB, prints "ready" and
// holds the memory until stdin closes, then exits.
func Alloc() {
	mib, err := strconv.Atoi(os.Getenv(MiBEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, MiBEnv+":", err)
		os.Exit(2)
	}
	buf := make([]byte, mib<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	runtime.KeepAlive(buf)
	os.Exit(0)
}
