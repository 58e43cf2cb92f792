// logpath.go measures the daemon's own log path: a command run in a
// workspace by a shipote engine, its stdout read by the engine and written
// to the command's log file (logfile.Writer, with the in-memory ring
// beside it), timed from Exec until every byte is in the file. It is
// compared with pipe -> Go read -> file in the same run (logs.go), and a
// producer paced at 0.8x that floor's rate must lose nothing.

package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
)

// logEngine is an in-memory engine keeping log files in its own directory,
// with one workspace the runs exec their commands in.
type logEngine struct {
	eng  *shipote.Engine
	ws   string
	dir  string
	runs int
}

func startLogEngine(ctx context.Context, dir string, maxBytes int64) (*logEngine, error) {
	eng, err := shipote.Start(ctx, shipote.NewActorSystem(nil), shipote.Config{
		Limits: "none", LogDir: dir, LogMaxBytes: maxBytes, LogMaxFiles: 1})
	if err != nil {
		return nil, fmt.Errorf("bench: logs engine: %w", err)
	}
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "logs"})
	if err != nil {
		_ = eng.Stop(context.Background())
		return nil, err
	}
	return &logEngine{eng: eng, ws: ws.ID, dir: filepath.Join(dir, ws.ID)}, nil
}

func (le *logEngine) close() error { return le.eng.Stop(context.Background()) }

// run execs argv (which writes size bytes of logsLine lines to stdout) as a
// new command and waits until the command has ended and its log file holds
// every line, or has stopped growing with bytes dropped. It returns the
// time from Exec to then, and the bytes the Writer dropped. With count,
// it also reads the file and returns the output bytes it holds.
func (le *logEngine) run(ctx context.Context, argv []string, size int64, count bool) (res logsResult, kept int64, err error) {
	le.runs++
	label := fmt.Sprintf("out%d", le.runs)
	path := filepath.Join(le.dir, label+".log")
	ref := messages.CommandRef{Label: label, Payload: messages.Payload{Native: &messages.NativePayload{Exec: argv[0], Argv: argv[1:]}}}
	start := time.Now()
	info, err := le.eng.Exec(ctx, le.ws, ref)
	if err != nil {
		return res, 0, err
	}
	lines := size / int64(len(logsLine)+1)
	var (
		want       int64 // the file's size with every line, once its line length is known
		last       int64
		lastChange = time.Now()
		ended      bool
	)
	for {
		if err := ctx.Err(); err != nil {
			return res, 0, err
		}
		if !ended {
			c, err := le.eng.Command(ctx, le.ws, info.ID)
			if err != nil {
				return res, 0, err
			}
			ended = c.State.Ended()
			res.dropped = c.LogDroppedBytes
		}
		fi, err := os.Stat(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, 0, err
		}
		var sz int64
		if err == nil {
			sz = fi.Size()
		}
		if want == 0 && sz > 0 {
			n, err := firstLineLen(path)
			if err != nil {
				return res, 0, err
			}
			want = lines * n
		}
		if sz != last {
			last, lastChange = sz, time.Now()
		}
		done := ended && want > 0 && sz == want
		stalled := ended && time.Since(lastChange) > 500*time.Millisecond
		if done || stalled {
			if stalled {
				// Drops: the time is when the file last grew.
				res.secs = lastChange.Sub(start).Seconds()
			} else {
				res.secs = time.Since(start).Seconds()
			}
			if c, err := le.eng.Command(ctx, le.ws, info.ID); err == nil {
				res.dropped = c.LogDroppedBytes
			}
			break
		}
		if time.Since(start) > 10*time.Minute {
			return res, 0, fmt.Errorf("bench: log file %s: %d bytes of %d after 10 minutes", path, sz, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.delivered = size - int64(res.dropped)
	res.files, res.onDisk = 1, last
	if count {
		if kept, err = countLines(path); err != nil {
			return res, 0, err
		}
		kept *= int64(len(logsLine) + 1)
	}
	if err := os.Remove(path); err != nil {
		return res, kept, err
	}
	return res, kept, nil
}

// firstLineLen is the length of the first line of path, newline included.
func firstLineLen(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil {
		return 0, fmt.Errorf("bench: first line of %s: %w", path, err)
	}
	if !bytes.Contains(line, []byte(logsLine)) {
		return 0, fmt.Errorf("bench: first line of %s is %q", path, line)
	}
	return int64(len(line)), nil
}

// countLines counts the lines of path that end with logsLine: the
// command's output lines kept (a drop notice does not count).
func countLines(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var n int64
	for sc.Scan() {
		if bytes.HasSuffix(sc.Bytes(), []byte(" out "+logsLine)) {
			n++
		}
	}
	return n, sc.Err()
}

// floodArgv is the command of every flood mode: size bytes of logsLine.
func floodArgv(size int64) []string {
	return []string{"/bin/sh", "-c", "yes '" + logsLine + "' | head -c " + strconv.FormatInt(size, 10)}
}
