// logs.go measures durable command logs: a command writing lines at full
// speed through a pipe into an internal/logfile Writer (the engine's way:
// a reader goroutine copying 32 KiB reads into Writer.Write), against the
// same command writing straight to /dev/null, to a plain file, and through
// the same pipe and reader copied unformatted to a plain file, in the same
// run.

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shipote/shipote/internal/logfile"
)

// logsLine is the line the benchmark command repeats: 63 bytes and a newline.
const logsLine = "INFO worker-3 GET /api/v1/items handled status=200 took=12.3ms"

type logsMode int

const (
	logsWriter  logsMode = iota // pipe -> reader goroutine -> logfile.Writer
	logsFile                    // the command's stdout is a plain file
	logsDevNull                 // the command's stdout is /dev/null
	logsCopy                    // pipe -> reader goroutine -> plain file, unformatted
	logsEngine                  // a command of an engine's workspace -> its log file (logpath.go)
)

var logsModeNames = map[logsMode]string{
	logsWriter: "pipe->logfile.Writer", logsFile: "yes|head >file",
	logsDevNull: "yes|head >/dev/null", logsCopy: "pipe->Go read->file",
	logsEngine: "engine: workspace command -> log file",
}

// logsResult is one run of one mode.
type logsResult struct {
	secs      float64
	delivered int64  // bytes of command output kept (size minus drops)
	dropped   uint64 // bytes the Writer dropped
	files     int    // files left in the log directory
	onDisk    int64  // their bytes
}

// RunLogs measures `yes LINE | head -c 512M` (quick: 64 MiB) written
// through a pipe into a logfile.Writer with the default options (10 MiB
// files, 5 rotated, 1 MiB queue), from spawn until Close returns, against
// the same command with its stdout on /dev/null, on a plain file, and on a
// pipe copied by the same reader loop to a plain file. Figures are kept
// input lines/s and MB/s (decimal; dropped bytes do not count), median of 5
// runs (quick: 1), the modes alternating who goes first. The Writer never
// blocks its reader, so under this flood the kept fraction is the figure
// that matters; the note gives the drop share and the files left.
func RunLogs(ctx context.Context, r *Report, quick bool) error {
	size, runs := int64(512<<20), 5
	if quick {
		size, runs = 64<<20, 1
	}
	if quick && smoke {
		size = 8 << 20
	}
	dir, err := os.MkdirTemp("", "shipote-bench-logs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	le, err := startLogEngine(ctx, filepath.Join(dir, "engine"), 2*size)
	if err != nil {
		return err
	}
	defer le.close()
	once := func(m logsMode, size int64) (logsResult, error) {
		if m == logsEngine {
			lr, _, err := le.run(ctx, floodArgv(size), size, false)
			return lr, err
		}
		return logsOnce(ctx, m, dir, size)
	}
	modes := []logsMode{logsWriter, logsFile, logsDevNull, logsCopy, logsEngine}
	for _, m := range modes { // warm up: binaries, page cache
		if _, err := once(m, size/16); err != nil {
			return err
		}
	}
	res := map[logsMode][]logsResult{}
	for i := range runs {
		for j := range modes {
			m := modes[(i+j)%len(modes)]
			lr, err := once(m, size)
			if err != nil {
				return err
			}
			res[m] = append(res[m], lr)
		}
	}
	mbps := func(m logsMode) (med, lo, hi float64) {
		var xs []float64
		for _, lr := range res[m] {
			xs = append(xs, float64(lr.delivered)/lr.secs/1e6)
		}
		return Median(xs)
	}
	lineLen := float64(len(logsLine) + 1)
	w := res[logsWriter]
	var dropped uint64
	var files int
	var onDisk int64
	for _, lr := range w {
		dropped += lr.dropped
		files, onDisk = max(files, lr.files), max(onDisk, lr.onDisk)
	}
	note := fmt.Sprintf("%d MiB per run, median of %d; Writer dropped %.1f%% under the flood; %d files, %.1f MiB left",
		size>>20, runs, 100*float64(dropped)/float64(size)/float64(len(w)), files, float64(onDisk)/(1<<20))
	med, lo, hi := mbps(logsWriter)
	fileMed, _, _ := mbps(logsFile)
	lines := Row{Group: "logs", Name: "command -> pipe -> Writer, lines/s", Value: med * 1e6 / lineLen,
		Unit: "lines/s", Baseline: logsModeNames[logsFile], Base: fileMed * 1e6 / lineLen, HigherIsBetter: true,
		Target: ">= 1M lines/s", Note: note}
	if runs > 1 {
		lines.Min, lines.Max = lo*1e6/lineLen, hi*1e6/lineLen
	}
	lines.Met = Bool(lines.Value >= 1e6)
	r.Add(lines)
	for _, b := range []logsMode{logsFile, logsDevNull, logsCopy} {
		base, _, _ := mbps(b)
		row := Row{Group: "logs", Name: "command -> pipe -> Writer, MB/s", Value: med, Unit: "MB/s",
			Baseline: logsModeNames[b], Base: base, HigherIsBetter: true}
		if runs > 1 {
			row.Min, row.Max = lo, hi
		}
		r.Add(row)
	}
	return logPathRows(ctx, r, le, res, size, runs, mbps)
}

// logPathRows adds the rows of the engine's own log path: its flood rate
// against pipe -> Go read -> file, and a producer paced at 0.8x that rate
// through the engine, whose every byte must be in the file.
func logPathRows(ctx context.Context, r *Report, le *logEngine, res map[logsMode][]logsResult, size int64, runs int,
	mbps func(logsMode) (float64, float64, float64)) error {
	med, lo, hi := mbps(logsEngine)
	floor, _, _ := mbps(logsCopy)
	var dropped uint64
	for _, lr := range res[logsEngine] {
		dropped += lr.dropped
	}
	flood := Row{Group: "logs", Name: "command -> engine -> log file, MB/s", Value: med, Unit: "MB/s",
		Baseline: logsModeNames[logsCopy], Base: floor, HigherIsBetter: true, Target: ">= 0.8x",
		Note: fmt.Sprintf("the daemon's path: `yes|head -c %d MiB` exec'd in a workspace of an engine, stdout read by the engine into the command's ring and log file, timed from Exec until the file holds it all; kept bytes only (dropped %.2f%% under the flood); median of %d",
			size>>20, 100*float64(dropped)/float64(size)/float64(max(1, len(res[logsEngine]))), runs)}
	if runs > 1 {
		flood.Min, flood.Max = lo, hi
	}
	flood.Met = Bool(floor > 0 && med >= 0.8*floor)
	r.Add(flood)

	floorBin, err := buildFloor(ctx, filepath.Dir(le.dir))
	if err != nil {
		return err
	}
	rate := int64(0.8 * floor * 1e6)
	paced := min(size, max(int64(64<<20), rate*3)) // about three seconds of output
	paced -= paced % int64(len(logsLine)+1)
	lr, kept, err := le.run(ctx, []string{floorBin, "produce", strconv.FormatInt(rate, 10), strconv.FormatInt(paced, 10), logsLine}, paced, true)
	if err != nil {
		return err
	}
	lost := paced - kept
	r.Add(Row{Group: "logs", Name: "producer at 0.8x the floor rate -> engine -> log file, MB/s", Value: float64(kept) / lr.secs / 1e6,
		Unit: "MB/s", Baseline: "the producer's pace", Base: float64(rate) / 1e6, HigherIsBetter: true,
		Target: "0 bytes lost", Met: Bool(lost == 0 && lr.dropped == 0),
		Note: fmt.Sprintf("%d MiB written at %.0f MB/s (0.8x pipe->Go read->file); %d bytes lost (lines counted in the file), Writer dropped %d",
			paced>>20, float64(rate)/1e6, lost, lr.dropped)})
	return nil
}

// logsOnce runs the command once in mode m and returns what it measured.
func logsOnce(ctx context.Context, m logsMode, dir string, size int64) (logsResult, error) {
	var res logsResult
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", "yes '"+logsLine+"' | head -c "+strconv.FormatInt(size, 10))
	cmd.Stderr = os.Stderr
	var (
		out    *os.File // the command's stdout, closed after Start
		pr     *os.File // read end of its pipe
		sink   *os.File // the plain file of logsCopy
		w      *logfile.Writer
		logDir = filepath.Join(dir, "logs")
		plain  = filepath.Join(dir, "plain.log")
		err    error
	)
	defer os.RemoveAll(logDir)
	defer os.Remove(plain)
	switch m {
	case logsDevNull:
		out, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	case logsFile:
		out, err = os.Create(plain)
	case logsCopy, logsWriter:
		pr, out, err = os.Pipe()
		if err == nil && m == logsCopy {
			sink, err = os.Create(plain)
		}
		if err == nil && m == logsWriter {
			w, err = logfile.Open(logfile.Options{Path: filepath.Join(logDir, "cmd.log")})
		}
	}
	if err != nil {
		return res, err
	}
	if pr != nil {
		defer pr.Close()
	}
	if sink != nil {
		defer sink.Close()
	}
	if w != nil {
		defer w.Close()
	}
	cmd.Stdout = out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		out.Close()
		return res, err
	}
	out.Close()
	var copyErr error
	if pr != nil {
		copyErr = logsPump(pr, w, sink)
	}
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("bench: logs command: %w", err)
	}
	if copyErr != nil {
		return res, copyErr
	}
	if w != nil {
		if err := w.Close(); err != nil {
			return res, err
		}
	}
	res.secs = time.Since(start).Seconds()
	res.delivered = size
	if w != nil {
		res.dropped = w.Dropped()
		res.delivered -= int64(res.dropped)
		ents, _ := os.ReadDir(logDir)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				res.files++
				res.onDisk += fi.Size()
			}
		}
	}
	return res, nil
}

// logsPump copies r into w, or into sink when w is nil, in 32 KiB reads
// (as the engine's pump does) until EOF.
func logsPump(r io.Reader, w *logfile.Writer, sink io.Writer) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if w != nil {
				w.Write(logfile.StreamOut, time.Now(), buf[:n])
			} else if _, werr := sink.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
