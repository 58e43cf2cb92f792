// This file holds TestMain: it runs the child processes some tests start
// (the test binary re-run with SHIPOTE_PERSISTENCE_CHILD set) and checks for
// leaked goroutines otherwise.

package persistence_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/persistence"
)

const childEnv = "SHIPOTE_PERSISTENCE_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode, os.Getenv("SHIPOTE_PERSISTENCE_PATH")))
	}
	goleak.VerifyTestMain(m)
}

// Child exit codes.
const (
	childOK     = 0
	childLocked = 3
	childFailed = 4
)

// runChild does one thing in a child process and reports it on stdout.
//
//   - "open": Open path; exit childLocked with the error when it is locked.
//   - "hold": Open path, print "locked", and hold the lock until stdin closes.
//   - "save-fsize": limit the file size to 4 KiB (RLIMIT_FSIZE) and save a
//     state larger than that; exit childFailed with the error when the save
//     fails, as it should.
func runChild(mode, path string) int {
	switch mode {
	case "open":
		s, err := persistence.Open(path)
		if errors.Is(err, persistence.ErrLocked) {
			fmt.Println(err)
			return childLocked
		}
		if err != nil {
			fmt.Println(err)
			return childFailed
		}
		s.Close()
		return childOK
	case "hold":
		s, err := persistence.Open(path)
		if err != nil {
			fmt.Println(err)
			return childFailed
		}
		fmt.Println("locked")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		s.Close()
		return childOK
	case "save-fsize":
		s, err := persistence.Open(path)
		if err != nil {
			fmt.Println(err)
			return childFailed + 1
		}
		defer s.Close()
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 4096, Max: 4096}); err != nil {
			fmt.Println(err)
			return childFailed + 1
		}
		st := fullState()
		st.Workspaces[0].Spec.Label = strings.Repeat("x", 8192)
		if _, err := s.Save(st); err != nil {
			fmt.Println(err)
			return childFailed
		}
		return childOK
	}
	fmt.Println("unknown child mode", mode)
	return 2
}
