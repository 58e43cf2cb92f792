package actors

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/logfile"
	"github.com/shipote/shipote/internal/logring"
	"github.com/shipote/shipote/messages"
)

// benchLine is the line the log path benchmarks repeat (as bench/logs.go):
// 63 bytes and a newline.
const benchLine = "INFO worker-3 GET /api/v1/items handled status=200 took=12.3ms\n"

// floodPipe returns the read end of an output pipe (as a command's) and
// starts a goroutine writing size bytes of benchLine lines into its write
// end in 4 KiB writes (as `yes | head -c` does), closing it at the end. The returned function waits
// for the writer.
func floodPipe(tb testing.TB, size int) (*os.File, func()) {
	tb.Helper()
	r, w, err := outputPipe()
	if err != nil {
		tb.Fatal(err)
	}
	lines := bytes.Repeat([]byte(benchLine), 2*(4<<10)/len(benchLine))
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Close()
		for off, left := 0, size; left > 0; {
			p := lines[off : off+min(left, 4<<10)]
			n, err := w.Write(p)
			off = (off + n) % len(benchLine)
			if err != nil {
				return
			}
			left -= n
		}
	}()
	return r, func() { <-done }
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start (the whole process:
// producer, pump, Writer and runtime), which a loaded machine disturbs less
// than the wall-clock rate.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N)/1e6, "cpu-ms/op")
}

// floodCommand starts `yes LINE | head -c size` with its stdout on an
// output pipe (as a command of a workspace) and returns the pipe's read
// end; the returned function waits for the command.
func floodCommand(tb testing.TB, size int) (*os.File, func()) {
	tb.Helper()
	r, w, err := outputPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", "yes '"+benchLine[:len(benchLine)-1]+"' | head -c "+strconv.Itoa(size))
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		tb.Fatal(err)
	}
	w.Close()
	return r, func() {
		if err := cmd.Wait(); err != nil {
			tb.Error(err)
		}
	}
}

// BenchmarkPumpToLogFile measures a command's output path: a pipe read by
// pump into the command's ring and its log file (the engine's options: a
// queue wait of LogWait, no rotation within the run), until the file holds
// every line. Compare with BenchmarkPipeToFile, the floor.
func BenchmarkPumpToLogFile(b *testing.B) {
	b.Run("goroutine", func(b *testing.B) { benchPumpToLogFile(b, floodPipe) })
	b.Run("yes|head", func(b *testing.B) { benchPumpToLogFile(b, floodCommand) })
}

func benchPumpToLogFile(b *testing.B, flood func(testing.TB, int) (*os.File, func())) {
	const size = 64 << 20
	dir := b.TempDir()
	b.SetBytes(size)
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	defer reportCPU(b, cpu0)
	for i := range b.N {
		path := filepath.Join(dir, "cmd"+strconv.Itoa(i)+".log")
		lw, err := logfile.Open(logfile.Options{Path: path, MaxBytes: 4 * size, MaxFiles: 1, Wait: LogWait})
		if err != nil {
			b.Fatal(err)
		}
		r, wait := flood(b, size)
		pump(r, messages.Stdout, output{ring: logring.New(0), file: lw}, time.Now)
		wait()
		if err := lw.Close(); err != nil {
			b.Fatal(err)
		}
		if lw.Dropped() != 0 {
			b.Fatalf("dropped %d bytes", lw.Dropped())
		}
		b.StopTimer()
		os.Remove(path)
		b.StartTimer()
	}
}

// BenchmarkPipeToFile is the floor of BenchmarkPumpToLogFile: the same pipe
// read in 64 KiB reads and copied unformatted to a plain file.
func BenchmarkPipeToFile(b *testing.B) {
	b.Run("goroutine", func(b *testing.B) { benchPipeToFile(b, floodPipe) })
	b.Run("yes|head", func(b *testing.B) { benchPipeToFile(b, floodCommand) })
}

func benchPipeToFile(b *testing.B, flood func(testing.TB, int) (*os.File, func())) {
	const size = 64 << 20
	dir := b.TempDir()
	b.SetBytes(size)
	buf := make([]byte, 64<<10)
	cpu0 := cpuTime(b)
	defer reportCPU(b, cpu0)
	for i := range b.N {
		path := filepath.Join(dir, "plain"+strconv.Itoa(i))
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		r, wait := flood(b, size)
		if _, err := io.CopyBuffer(f, r, buf); err != nil {
			b.Fatal(err)
		}
		r.Close()
		wait()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(path)
		b.StartTimer()
	}
}
