//go:build !nocluster

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// tapBytes is what the tapped pipeline's source writes.
const tapBytes = 64 << 20

// writeSource writes n deterministic pseudo-random bytes to path and
// returns their sha256.
func writeSource(t *testing.T, path string, n int) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	r := rand.NewChaCha8([32]byte{'s', 'h', 'i', 'p', 'o', 't', 'e'})
	buf := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(buf) {
		_, _ = r.Read(buf)
		if _, err := w.Write(buf[:min(len(buf), left)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tapChannels counts the taps attached to node gen of run, as the member
// holding it reports them.
func tapChannels(t *testing.T, d *daemonProc, run string) (n int, dropped uint64) {
	t.Helper()
	p := getJSON[messages.PipelineInfo](t, d, "pipe", "show", run)
	for _, s := range p.Splitters {
		for _, c := range s.Channels {
			if c.Tap && c.From == "gen" {
				n++
				dropped += c.DroppedBytes
			}
		}
	}
	return n, dropped
}

// tapProc is `shipote tap` running against a member, its output hashed.
type tapProc struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}
	n      int64
	sum    string
	err    error
}

func startTap(t *testing.T, d *daemonProc, run string) *tapProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	tp := &tapProc{cancel: cancel, done: make(chan struct{})}
	tp.cmd = exec.CommandContext(ctx, bin, "--socket", d.sock, "tap", run, "--node", "gen")
	var stderr syncBuffer
	tp.cmd.Stderr = &stderr
	out, err := tp.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(tp.done)
		h := sha256.New()
		tp.n, _ = io.Copy(h, out)
		tp.sum = hex.EncodeToString(h.Sum(nil))
		if err := tp.cmd.Wait(); err != nil && ctx.Err() == nil {
			tp.err = fmt.Errorf("tap: %w\n%s", err, stderr.String())
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-tp.done
	})
	return tp
}

// TestE2EClusterTap taps, through member a, a pipeline running on member
// b: the tap's bytes come over a direct stream between the two, 64 MiB
// byte for byte; a tap whose client goes away is detached from b's
// pipeline.
func TestE2EClusterTap(t *testing.T) {
	ms := startCluster(t, 2)
	a, b := ms[0], ms[1]
	wsID := a.id(t, "ws", "create", "--label", "taps", "--node", "b")

	dir := shortDir(t)
	src, goFile := filepath.Join(dir, "src.bin"), filepath.Join(dir, "go")
	want := writeSource(t, src, tapBytes)
	// The source waits for the taps to attach. A tap never slows its
	// pipeline (a reader that falls behind loses bytes), so the pipeline
	// is paced (16 MiB/s, 4 s in all) with a 4 MiB buffer per reader:
	// the tap may fall 250 ms behind without loss.
	spec := writeFile(t, dir, "big.yaml", fmt.Sprintf(`label: big
discern: {max_bytes_per_sec: %d, buffer_bytes: %d}
nodes:
  - {label: gen, payload: {native: {exec: /bin/sh, argv: ["-c", "while [ ! -e %s ]; do sleep 0.05; done; exec cat %s"]}}}
  - {label: sum, payload: {native: {exec: sha256sum}}}
edges: [{from: gen, to: sum}]
`, 16<<20, 4<<20, goFile, src))
	// Started through a with --tap: the run and its tap sockets are b's.
	run := a.id(t, "pipe", "run", "taps", "-f", spec, "--tap")
	if p := getJSON[messages.PipelineInfo](t, a.daemonProc, "pipe", "show", run); p.Workspace != wsID || !p.Tap {
		t.Fatalf("the run asked of a: workspace %s (want b's %s), tap %v", p.Workspace, wsID, p.Tap)
	}

	// A tap whose client goes away is detached on b.
	gone := startTap(t, a.daemonProc, run)
	tap := startTap(t, a.daemonProc, run)
	poll(t, "two taps attached on b", func() bool { n, _ := tapChannels(t, b.daemonProc, run); return n == 2 })
	gone.cancel()
	<-gone.done
	poll(t, "the cancelled tap detached on b", func() bool { n, _ := tapChannels(t, b.daemonProc, run); return n == 1 })

	start := time.Now()
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tap.done:
	case <-time.After(deadline):
		_, dropped := tapChannels(t, b.daemonProc, run)
		t.Fatalf("the tap did not end (%d bytes dropped on b)", dropped)
	}
	took := time.Since(start)
	if tap.err != nil {
		t.Fatal(tap.err)
	}
	p := pipelineEnded(t, b.daemonProc, run)
	if p.State != messages.PipelineSucceeded {
		t.Fatalf("the pipeline on b: %s", p.State)
	}
	if tap.n != tapBytes || tap.sum != want {
		t.Fatalf("tapped through a: %d bytes, sha256 %s; the source wrote %d bytes, sha256 %s", tap.n, tap.sum, tapBytes, want)
	}
	t.Logf("64 MiB tapped across members in %v", took.Round(time.Millisecond))
	// b's own consumer saw the same bytes (its log, read through a).
	if out := a.ok(t, "logs", "taps/big/sum"); !strings.HasPrefix(out, want) {
		t.Fatalf("sha256sum on b printed %q, want %s", out, want)
	}

	for _, m := range ms {
		if code := m.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("member %s exited %d\n%s", m.node, code, tail(m.stderr.String(), 3000))
		}
	}
}
