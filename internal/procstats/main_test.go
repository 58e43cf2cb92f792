// main_test.go owns the test binary's entry point: goleak, and the helper
// modes run when a test re-executes the binary (spin, alloc, spawner).

package procstats

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/shipote/shipote/internal/testproc"
)

// helperEnv selects a helper mode when the test binary is re-executed.
const helperEnv = "SHIPOTE_PROCSTATS_TEST_HELPER"

func TestMain(m *testing.M) {
	testproc.Run(helperEnv, map[string]func(){"spawner": helperSpawner})
	goleak.VerifyTestMain(m)
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

// helperCmd returns a command re-executing the test binary in mode
// ("alloc", "spin" or "spawner").
func helperCmd(mode string, env ...string) *exec.Cmd {
	return testproc.Command(helperEnv, mode, env...)
}
