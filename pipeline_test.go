package shipote

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

func node(label, exec string, argv ...string) messages.Node {
	return messages.Node{Label: label, Payload: messages.Payload{Native: &messages.NativePayload{Exec: exec, Argv: argv}}}
}

// randomFile writes n pseudo-random bytes and returns the path and the
// hex sha256.
func randomFile(t *testing.T, n int64) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "random.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	src := rand.NewChaCha8([32]byte{1, 2, 3})
	buf := make([]byte, 1<<20)
	for written := int64(0); written < n; written += int64(len(buf)) {
		_, _ = src.Read(buf)
		h.Write(buf)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	return path, hex.EncodeToString(h.Sum(nil))
}

func waitPipeline(t *testing.T, eng *Engine, run string, d time.Duration, done func(messages.PipelineInfo) bool) messages.PipelineInfo {
	t.Helper()
	var info messages.PipelineInfo
	eventually(t, d, "pipeline state", func() bool {
		var err error
		info, err = eng.Pipeline(testCtx(t), run)
		return err == nil && done(info)
	})
	return info
}

func nodeLog(t *testing.T, eng *Engine, ws, run, node string) string {
	t.Helper()
	lines, err := eng.NodeLogs(testCtx(t), run, node, LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Line + "\n")
	}
	return b.String()
}

func TestFanOutIsByteIdentical(t *testing.T) {
	size := int64(256 << 20)
	path, want := randomFile(t, size)
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "fan"}); err != nil {
		t.Fatal(err)
	}
	spec := messages.PipelineSpec{
		Label: "fanout",
		Nodes: []messages.Node{node("gen", "cat", path), node("a", "sha256sum"), node("b", "sha256sum"), node("c", "sha256sum"), node("first", "head", "-c", "1")},
		Edges: []messages.Edge{{From: "gen", To: "a"}, {From: "gen", To: "b"}, {From: "gen", To: "c"}, {From: "gen", To: "first"}},
	}
	run, err := eng.RunPipeline(ctx, "fan", spec, false)
	if err != nil {
		t.Fatal(err)
	}
	info := waitPipeline(t, eng, run.ID, 5*time.Minute, func(p messages.PipelineInfo) bool { return p.State.Ended() })
	if info.State != messages.PipelineSucceeded {
		t.Fatalf("pipeline %s: %+v", info.State, info.Nodes)
	}
	for _, n := range []string{"a", "b", "c"} {
		if got := nodeLog(t, eng, "fan", run.ID, n); !strings.HasPrefix(got, want) {
			t.Errorf("consumer %s hashed %q, want %s", n, got, want)
		}
	}
	if len(info.Splitters) != 1 {
		t.Fatalf("splitters %+v", info.Splitters)
	}
	s := info.Splitters[0]
	if s.BytesIn != uint64(size) {
		t.Errorf("bytes_in %d, want %d", s.BytesIn, size)
	}
	for _, c := range s.Channels {
		if c.To != "first" && c.BytesTotal != uint64(size) {
			t.Errorf("channel %s->%s bytes_total %d, want %d", c.From, c.To, c.BytesTotal, size)
		}
	}
}

func TestPipelineSupervision(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	sub := eng.Events(256)
	defer sub.Cancel()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "sup"}); err != nil {
		t.Fatal(err)
	}
	failing := messages.PipelineSpec{
		Label:               "failing",
		Nodes:               []messages.Node{node("gen", "seq", "1", "1000"), node("bad", "sh", "-c", "cat >/dev/null; exit 3")},
		Edges:               []messages.Edge{{From: "gen", To: "bad"}},
		RestartOnFailure:    true,
		RestartBackoffMs:    100,
		RestartMaxBackoffMs: 1000,
		RestartMax:          3,
	}
	run, err := eng.RunPipeline(ctx, "sup", failing, false)
	if err != nil {
		t.Fatal(err)
	}
	info := waitPipeline(t, eng, run.ID, time.Minute, func(p messages.PipelineInfo) bool { return p.State.Ended() })
	if info.State != messages.PipelineGaveUp || info.Restarts != 3 {
		t.Fatalf("failing pipeline: state %s restarts %d", info.State, info.Restarts)
	}
	// The starts came after doubling backoffs.
	var starts, ends []time.Time
	for len(ends) < 4 {
		select {
		case ev := <-sub.C:
			if ev.Pipeline != "failing" {
				continue
			}
			switch ev.Kind {
			case messages.EventStarted:
				starts = append(starts, ev.Time)
			case messages.EventFailed, messages.EventGaveUp:
				ends = append(ends, ev.Time)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("events: %d starts %d ends", len(starts), len(ends))
		}
	}
	for i, want := range []time.Duration{100, 200, 400} {
		if i+1 < len(starts) {
			if gap := starts[i+1].Sub(ends[i]); gap < want*time.Millisecond {
				t.Errorf("restart %d after %v, want >= %v", i+1, gap, want*time.Millisecond)
			}
		}
	}

	ok := messages.PipelineSpec{
		Label:            "fine",
		Nodes:            []messages.Node{node("gen", "seq", "1", "100000"), node("count", "wc", "-l")},
		Edges:            []messages.Edge{{From: "gen", To: "count"}},
		RestartOnFailure: true,
	}
	run2, err := eng.RunPipeline(ctx, "sup", ok, false)
	if err != nil {
		t.Fatal(err)
	}
	info = waitPipeline(t, eng, run2.ID, time.Minute, func(p messages.PipelineInfo) bool { return p.State.Ended() })
	time.Sleep(300 * time.Millisecond)
	info, _ = eng.Pipeline(ctx, run2.ID)
	if info.State != messages.PipelineSucceeded || info.Restarts != 0 {
		t.Fatalf("succeeding pipeline: state %s restarts %d", info.State, info.Restarts)
	}
	if got := nodeLog(t, eng, "sup", run2.ID, "count"); strings.TrimSpace(got) != "100000" {
		t.Errorf("wc -l printed %q", got)
	}
}

func TestPipelineBadInput(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "pb",
		Permissions: messages.Permissions{AllowExec: []string{"/usr/bin/seq", "/usr/bin/wc"}}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		spec  messages.PipelineSpec
		field string
	}{
		{"unknown node", messages.PipelineSpec{Label: "p", Nodes: []messages.Node{node("a", "seq", "3"), node("b", "wc")},
			Edges: []messages.Edge{{From: "a", To: "b"}, {From: "a", To: "hsah"}}}, "edges[1].to"},
		{"refused exec", messages.PipelineSpec{Label: "p", Nodes: []messages.Node{node("a", "seq", "3"), node("b", "sha256sum")},
			Edges: []messages.Edge{{From: "a", To: "b"}}}, "nodes[1].payload.native.exec"},
		{"fan-in", messages.PipelineSpec{Label: "p", Nodes: []messages.Node{node("a", "seq", "3"), node("b", "seq", "3"), node("c", "wc")},
			Edges: []messages.Edge{{From: "a", To: "c"}, {From: "b", To: "c"}}}, "edges[1].to"},
		{"cycle", messages.PipelineSpec{Label: "p", Nodes: []messages.Node{node("a", "wc"), node("b", "wc")},
			Edges: []messages.Edge{{From: "a", To: "b"}, {From: "b", To: "a"}}}, "edges"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eng.RunPipeline(ctx, "pb", tc.spec, false)
			var fe *messages.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
	if ps, _ := eng.Pipelines(ctx, "pb"); len(ps) != 0 {
		t.Errorf("refused pipelines were started: %+v", ps)
	}
}

func TestTapReceivesBytes(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "tapws"}); err != nil {
		t.Fatal(err)
	}
	spec := messages.PipelineSpec{
		Label: "ticker",
		Nodes: []messages.Node{node("gen", "sh", "-c", "while :; do echo tick; sleep 0.05; done"), node("sink", "cat")},
		Edges: []messages.Edge{{From: "gen", To: "sink"}},
	}
	run, err := eng.RunPipeline(ctx, "tapws", spec, false)
	if err != nil {
		t.Fatal(err)
	}
	var tap io.ReadCloser
	eventually(t, 10*time.Second, "a tap", func() bool {
		tp, err := eng.Tap(ctx, run.ID, "gen")
		if err != nil {
			return false
		}
		tap = tp
		return true
	})
	defer tap.Close()
	buf := make([]byte, 64)
	got := ""
	for !strings.Contains(got, "tick\n") {
		n, err := tap.Read(buf)
		if err != nil {
			t.Fatalf("tap read: %v (got %q)", err, got)
		}
		got += string(buf[:n])
	}
	if _, err := eng.StopPipeline(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
}

// While 100 MB flows through a 20 MB/s throttle, the bytes_per_sec the API
// reports is live and tracks the rate measured from bytes_total. The
// bounds hold on a loaded machine: the token bucket (starting empty, a
// 250 ms burst) lets no window of a second or more carry over 1.25 x the
// rate, and load only slows the flow, which moves the reported and the
// measured rate together. How exact the rate is belongs in bench/.
func TestFlowRateCounterTracksMeasuredRate(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "rate"}); err != nil {
		t.Fatal(err)
	}
	const rate, size = 20_000_000, 100_000_000 // 5 s at the limit
	run, err := eng.RunPipeline(ctx, "rate", messages.PipelineSpec{
		Label:   "flow",
		Nodes:   []messages.Node{node("gen", "head", "-c", strconv.Itoa(size), "/dev/zero"), node("sink", "cat")},
		Edges:   []messages.Edge{{From: "gen", To: "sink"}},
		Discern: messages.DiscernPolicy{MaxBytesPerSec: rate},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	type reading struct {
		at    time.Time
		total uint64
		rate  uint64
	}
	var rs []reading
	var final messages.ChannelInfo
	for {
		info, err := eng.Pipeline(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Ended() {
			if info.State != messages.PipelineSucceeded {
				t.Fatalf("pipeline %s", info.State)
			}
			if len(info.Splitters) == 1 && len(info.Splitters[0].Channels) == 1 {
				final = info.Splitters[0].Channels[0]
			}
			break
		}
		if len(info.Splitters) == 1 && len(info.Splitters[0].Channels) == 1 {
			c := info.Splitters[0].Channels[0]
			rs = append(rs, reading{time.Now(), c.BytesTotal, c.BytesPerSec})
		}
		time.Sleep(100 * time.Millisecond)
	}
	if final.BytesTotal != size || final.BytesPerSec != 0 {
		t.Errorf("after the run: bytes_total %d, bytes_per_sec %d; want %d and 0", final.BytesTotal, final.BytesPerSec, size)
	}
	// Every reading: never above the throttle plus its burst.
	for _, r := range rs {
		if r.rate > rate*5/4 {
			t.Errorf("at %d bytes: bytes_per_sec %d over the %d B/s limit plus its burst", r.total, r.rate, rate)
		}
	}
	// Mid-stream (a second in, before the end): live, and the reported
	// rates integrated over the readings account for the bytes that moved.
	var mid []reading
	for _, r := range rs {
		if r.total >= rate && r.total < size {
			mid = append(mid, r)
		}
	}
	if len(mid) < 3 {
		t.Fatalf("only %d mid-stream readings (%d in all)", len(mid), len(rs))
	}
	integral := 0.0
	for i, r := range mid {
		if r.rate == 0 {
			t.Errorf("at %d bytes: bytes_per_sec 0 while the flow runs", r.total)
		}
		if i > 0 {
			integral += float64(r.rate+mid[i-1].rate) / 2 * r.at.Sub(mid[i-1].at).Seconds()
		}
	}
	moved := float64(mid[len(mid)-1].total - mid[0].total)
	if ratio := integral / moved; ratio < 0.5 || ratio > 2 {
		t.Errorf("bytes_per_sec integrated over %d readings gives %.0f bytes, %.0f moved (ratio %.2f)", len(mid), integral, moved, ratio)
	}
	t.Logf("%d mid-stream readings; integrated bytes_per_sec %.0f for %.0f bytes moved", len(mid), integral, moved)
}
