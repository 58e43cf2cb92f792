// Package testproc lets a test binary re-execute itself as a helper
// process (a CPU spinner, a memory allocator, or a mode of the package's
// own), so that tests measure and limit real processes. Only tests import
// it.
package testproc

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"github.com/shipote/shipote/internal/pidstat"
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

// OrphanKinds names the processes OrphanScript leaves, in the order of
// their sleep durations (base, base+1, ...).
var OrphanKinds = []string{"child", "grandchild", "setsid grandchild", "double-forked"}

// OrphanScript returns a /bin/sh -c script (PATH must find sleep and
// setsid) that leaves one process of each kind a daemon's death must kill:
// the command itself (a child of the daemon), a grandchild in its process
// group, a grandchild in a session of its own, and a double-forked process
// re-parented away from the command at once. Each is `sleep <base+i>`, so
// Sleepers finds them, and any survivor, by argv alone.
func OrphanScript(base int) string {
	return fmt.Sprintf("sleep %d & setsid sleep %d & (sleep %d &) & exec sleep %d",
		base+1, base+2, base+3, base)
}

// Sleepers returns, for each of OrphanKinds, the pids of the live (not
// zombie) processes whose argv is exactly `sleep <base+i>`.
func Sleepers(base int) map[string][]int {
	want := make(map[string]string, len(OrphanKinds))
	for i, k := range OrphanKinds {
		want["sleep\x00"+strconv.Itoa(base+i)+"\x00"] = k
	}
	out := make(map[string][]int)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		k, ok := want[string(b)]
		if !ok || zombie(pid) {
			continue
		}
		out[k] = append(out[k], pid)
	}
	return out
}

// zombie reports whether pid is a zombie (or gone).
func zombie(pid int) bool {
	st, err := pidstat.Read(pid)
	return err != nil || st.State == 'Z'
}

// OrphanBase returns a random base for OrphanScript, far from any sleep a
// test would run otherwise.
func OrphanBase() int {
	return 400000 + rand.IntN(500000)*10
}
