// main_test.go owns the test binary's entry point: goleak, and the helper
// modes run when a test re-executes the binary (spin, alloc, spawner).

package procstats

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// helperEnv selects a helper mode when the test binary is re-executed.
const helperEnv = "SHIPOTE_PROCSTATS_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		goleak.VerifyTestMain(m)
	case "spin":
		for i := 0; ; i++ {
			_ = i * i
		}
	case "alloc":
		helperAlloc()
	case "spawner":
		helperSpawner()
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperAlloc allocates and touches SHIPOTE_TEST_MIB MiB, says "ready" and
// holds the memory until stdin closes.
func helperAlloc() {
	mib, err := strconv.Atoi(os.Getenv("SHIPOTE_TEST_MIB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "SHIPOTE_TEST_MIB:", err)
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

// helperSpawner starts an allocator in a new session whose stdin is fd 3,
// prints its pid once it is ready, and exits when its own stdin closes,
// leaving the allocator to be reparented.
func helperSpawner() {
	cmd := helperCmd("alloc", "SHIPOTE_TEST_MIB="+os.Getenv("SHIPOTE_TEST_MIB"))
	cmd.Stdin = os.NewFile(3, "hold")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		fmt.Fprintln(os.Stderr, "allocator:", line, err)
		os.Exit(2)
	}
	fmt.Println(cmd.Process.Pid)
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// helperCmd returns a command re-executing the test binary in mode.
func helperCmd(mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append([]string{helperEnv + "=" + mode, "PATH=" + os.Getenv("PATH")}, env...)
	return cmd
}
