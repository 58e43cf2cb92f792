// main_test.go runs the package's tests under goleak and, when re-executed
// by TestCrashKeepsWrittenLines, acts as the process that writes lines and
// is killed.

package logfile

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// crashEnv names the log file the re-executed test binary writes to.
const crashEnv = "LOGFILE_CRASH_HELPER_PATH"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		crashHelper(path)
		return
	}
	goleak.VerifyTestMain(m)
}

// crashHelper writes numbered lines through a Writer. Every 1000 lines it
// calls Flush and prints "ack N" (lines 0..N-1 are in the file). After
// ackRounds acknowledgements it writes unflushedLines more lines without
// Flush, prints "wrote N" and waits to be killed.
func crashHelper(path string) {
	rounds, _ := strconv.Atoi(os.Getenv("LOGFILE_CRASH_ROUNDS"))
	w, err := Open(Options{Path: path, MaxBytes: 256 << 10, MaxFiles: 50})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	n := 0
	for range rounds {
		for range 1000 {
			w.Write(StreamOut, time.Now(), fmt.Appendf(nil, "line %d\n", n))
			n++
		}
		if err := w.Flush(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ack", n)
	}
	for range unflushedLines {
		w.Write(StreamOut, time.Now(), fmt.Appendf(nil, "line %d\n", n))
		n++
	}
	fmt.Println("wrote", n)
	time.Sleep(time.Hour) // killed here
}

const unflushedLines = 500
