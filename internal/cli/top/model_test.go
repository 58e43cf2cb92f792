// This file tests the interactive dashboard's model: it is driven with the
// messages the poll, the event and log feeds and the keyboard would send,
// over a fixture of workspaces and pipelines, and its View is checked.

package top

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

const (
	wsBuild = "01ARZ3NDEKTSV4RRFFQ69G5FAA"
	wsWeb   = "01ARZ3NDEKTSV4RRFFQ69G5FBB"
	runFan  = "01ARZ3NDEKTSV4RRFFQ69G5FCC"
	cmdWeb  = "01ARZ3NDEKTSV4RRFFQ69G5FDD"
	cmdJob  = "01ARZ3NDEKTSV4RRFFQ69G5FEE"
)

// fixture is a daemon's answer: two workspaces (build with a 256M limit
// and a TTL, web without), two commands in build, a fan-out pipeline.
type fixture struct {
	rates     [2]uint64 // bytes/s of gen → count, gen → hash
	throttled uint64
	rss       uint64
}

func (f fixture) snapshot() snapshotMsg {
	build := messages.WorkspaceInfo{ID: wsBuild, CreatedAt: t0.Add(-3 * time.Minute), Deadline: t0.Add(10 * time.Minute),
		Spec:          messages.WorkspaceSpec{Label: "build", Soma: messages.Soma{MemoryMaxBytes: 256 << 20, PidsMax: 64}},
		CommandsAlive: 4, CommandsTotal: 5, PipelinesTotal: 1, LimitsBackend: "cgroup1",
		Stats: &messages.Sample{TimestampMs: t0.UnixMilli(), RSSBytes: f.rss, CPUPercent: 25}}
	web := messages.WorkspaceInfo{ID: wsWeb, CreatedAt: t0.Add(-time.Minute), Spec: messages.WorkspaceSpec{Label: "web"},
		CommandsAlive: 1, CommandsTotal: 1,
		Stats: &messages.Sample{TimestampMs: t0.UnixMilli(), RSSBytes: 512 << 20, CPUPercent: 80}}
	exit0 := 0
	cmds := []messages.CommandInfo{
		{ID: cmdWeb, Workspace: wsBuild, Label: "server", State: messages.CommandRunning, Pid: 4242, Restarts: 2, StartedAt: t0.Add(-65 * time.Second)},
		{ID: cmdJob, Workspace: wsBuild, Label: "job", State: messages.CommandExited, ExitCode: &exit0},
	}
	fan := messages.PipelineInfo{ID: runFan, Workspace: wsBuild, WorkspaceLabel: "build", Label: "fan", State: messages.PipelineBackoff,
		Supervised: true, Restarts: 3, StartedAt: t0.Add(-time.Minute), NextStartAt: t0.Add(1500 * time.Millisecond),
		Spec: messages.PipelineSpec{Label: "fan", RestartOnFailure: true, RestartMax: 5,
			Edges: []messages.Edge{{From: "gen", To: "count"}, {From: "gen", To: "hash"}}},
		Nodes: []messages.NodeInfo{{Label: "gen", State: messages.CommandRunning, Pid: 7},
			{Label: "count", State: messages.CommandRunning, Pid: 8}, {Label: "hash", State: messages.CommandRunning, Pid: 9}},
		Splitters: []messages.SplitterInfo{{Node: "gen", BytesIn: 4096, ThrottledMs: f.throttled, Channels: []messages.ChannelInfo{
			{From: "gen", To: "count", BytesTotal: 2048, BytesPerSec: f.rates[0]},
			{From: "gen", To: "hash", BytesTotal: 2048, BytesPerSec: f.rates[1], DroppedBytes: 300},
		}}}}
	return snapshotMsg{at: t0, workspaces: []messages.WorkspaceInfo{web, build}, pipelines: []messages.PipelineInfo{fan},
		commands: cmds, stats: map[string][]messages.Sample{}}
}

// history is a stats history of build: RSS rising from 16M to 128M, CPU
// falling.
func history() []messages.Sample {
	var out []messages.Sample
	for i := range 8 {
		out = append(out, messages.Sample{TimestampMs: t0.Add(time.Duration(i-8) * time.Second).UnixMilli(),
			RSSBytes: uint64(i+1) * 16 << 20, CPUPercent: float64(80 - 10*i)})
	}
	return out
}

func plainRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	return r
}

func colorRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor)
	return r
}

// newTestModel returns a model of size w×h that has taken in the fixture
// (with build's history).
func newTestModel(t *testing.T, w, h int, r *lipgloss.Renderer) *Model {
	t.Helper()
	m := NewModel(Config{Socket: "/tmp/shp-x/s.sock", Interval: time.Second, Now: func() time.Time { return t0 }, Renderer: r}, nil)
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	snap := fixture{rates: [2]uint64{1024, 2048}, rss: 128 << 20}.snapshot()
	snap.stats[wsBuild] = history()
	send(m, snap)
	return m
}

// send passes messages to the model, dropping the commands.
func send(m *Model, msgs ...tea.Msg) {
	for _, msg := range msgs {
		m.Update(msg)
	}
}

func key(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

func keys(m *Model, ks ...string) {
	for _, k := range ks {
		m.Update(key(k))
	}
}

// screen is the model's View without escape sequences.
func screen(m *Model) string { return ansi.Strip(m.View()) }

func mustContain(t *testing.T, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("no %q in\n%s", w, s)
		}
	}
}

func mustNotContain(t *testing.T, s string, nots ...string) {
	t.Helper()
	for _, w := range nots {
		if strings.Contains(s, w) {
			t.Errorf("unexpected %q in\n%s", w, s)
		}
	}
}

// hasLine reports whether a line of s is text, give or take spaces.
func hasLine(s, text string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == text {
			return true
		}
	}
	return false
}

// rowOf returns the list row of the workspace labelled label.
func rowOf(s, label string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, cursorMark+label+" ") || strings.HasPrefix(l, "  "+label+" ") {
			return l
		}
	}
	return ""
}

// lineWith returns the first line of s that contains sub.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func TestListView(t *testing.T) {
	m := newTestModel(t, 80, 24, plainRenderer())
	s := screen(m)
	mustContain(t, s, "shipote top", "2 workspaces", "1 pipeline ", "LABEL", "QUOTA", "● live")
	build := rowOf(s, "build")
	// RSS sparkline over the 7 newest samples (the column is 7 wide at 80).
	var rss, cpu []float64
	for _, h := range history()[1:] {
		rss = append(rss, float64(h.RSSBytes))
		cpu = append(cpu, h.CPUPercent)
	}
	mustContain(t, build, "01ARZ3ND", "4/5", "128M", cmdutil.Sparkline(rss), cmdutil.Sparkline(cpu), "10m00s", "ok")
	// 128M of 256M: half a bar (of 5 cells at 80 columns).
	mustContain(t, build, "███░░  50%")
	if !strings.HasPrefix(build, cursorMark) && !strings.HasPrefix(lineWith(s, "web"), cursorMark) {
		t.Errorf("no row carries the cursor mark:\n%s", s)
	}
	web := rowOf(s, "web")
	mustContain(t, web, "1/1", "512M", "80.0")
	if strings.Contains(web, "%") {
		t.Errorf("web has no memory limit, yet a bar: %q", web)
	}
	// Label order: build first.
	if strings.Index(s, "build") > strings.Index(s, "web ") {
		t.Errorf("not sorted by label:\n%s", s)
	}
}

// TestListViewCluster checks the NODE column: present (after LABEL) when
// the workspaces come from a cluster, absent on a lone daemon, and the
// filter matches member names.
func TestListViewCluster(t *testing.T) {
	for _, width := range []int{80, 160} {
		m := newTestModel(t, width, 24, plainRenderer())
		if strings.Contains(screen(m), "NODE") {
			t.Fatalf("a lone daemon's list has a NODE column:\n%s", screen(m))
		}
		snap := fixture{rss: 128 << 20}.snapshot()
		snap.workspaces[0].Node = "node-b" // web
		snap.workspaces[1].Node = "node-a" // build
		send(m, snap)
		s := screen(m)
		head := lineWith(s, "LABEL")
		if l, n, id := strings.Index(head, "LABEL"), strings.Index(head, "NODE"), strings.Index(head, "ID"); l < 0 || n < l || id < n {
			t.Errorf("%d columns: header is not LABEL NODE ID...: %q", width, head)
		}
		mustContain(t, rowOf(s, "build"), "node-a", "01ARZ3ND")
		mustContain(t, rowOf(s, "web"), "node-b")
		for _, l := range strings.Split(m.View(), "\n") {
			if w := lipgloss.Width(l); w > width {
				t.Errorf("%d columns: line of %d cells: %q", width, w, l)
			}
		}
		keys(m, "/", "n", "o", "d", "e", "-", "b", "enter")
		s = screen(m)
		if rowOf(s, "web") == "" || rowOf(s, "build") != "" {
			t.Errorf("%d columns: filter node-b shows:\n%s", width, s)
		}
	}
}

func TestMemoryBar(t *testing.T) {
	m := NewModel(Config{Renderer: plainRenderer()}, nil)
	for _, tc := range []struct {
		used  uint64
		limit int64
		want  string
	}{
		{0, 100, "░░░░░░░░░░   0%"},
		{50, 100, "█████░░░░░  50%"},
		{100, 100, "██████████ 100%"},
		{250, 100, "██████████ 250%"},
		{5, 0, "-"},
	} {
		if got := strings.TrimRight(ansi.Strip(m.bar(tc.used, tc.limit, 10)), " "); got != tc.want {
			t.Errorf("bar(%d, %d) = %q, want %q", tc.used, tc.limit, got, tc.want)
		}
	}
}

func TestQuotaFromEvents(t *testing.T) {
	m := newTestModel(t, 100, 30, plainRenderer())
	send(m, feedMsg[messages.Event]{items: []messages.Event{
		{Time: t0.Add(-10 * time.Second), Kind: messages.EventQuota, Workspace: wsBuild, Label: "build",
			Message: "memory 300M > memory_max_bytes 256M"},
	}})
	s := screen(m)
	mustContain(t, rowOf(s, "build"), "over")
	mustContain(t, s, "RECENT EVENTS", "quota build: memory 300M > memory_max_bytes 256M")
	send(m, feedMsg[messages.Event]{items: []messages.Event{
		{Time: t0.Add(-5 * time.Second), Kind: messages.EventQuota, Workspace: wsBuild, Message: "killed: memory 300M > memory_max_bytes 256M"},
	}})
	mustContain(t, rowOf(screen(m), "build"), "kill")
	keys(m, "enter")
	mustContain(t, screen(m), "quota warn: kill killed: memory 300M > memory_max_bytes 256M (5s ago)")
}

func TestFilter(t *testing.T) {
	m := newTestModel(t, 80, 24, plainRenderer())
	keys(m, "/", "w", "e")
	s := screen(m)
	mustContain(t, s, "/we")
	mustNotContain(t, s, "build ")
	mustContain(t, s, "web ")
	keys(m, "enter")
	s = screen(m)
	mustContain(t, s, `filter "we"`, cursorMark+"web")
	// By ID too, any case.
	keys(m, "esc", "/")
	for _, r := range strings.ToLower(wsBuild[20:]) {
		keys(m, string(r))
	}
	keys(m, "enter")
	s = screen(m)
	mustContain(t, s, cursorMark+"build")
	mustNotContain(t, s, "web ")
	keys(m, "/", "z", "z", "enter")
	mustContain(t, screen(m), "no workspace matches")
	keys(m, "esc")
	s = screen(m)
	mustContain(t, s, "build", "web ")
	mustNotContain(t, s, `filter "`)
}

func TestSort(t *testing.T) {
	m := newTestModel(t, 80, 24, plainRenderer())
	order := func() string {
		s := screen(m)
		if strings.Index(s, "build ") < strings.Index(s, "web ") {
			return "build,web"
		}
		return "web,build"
	}
	want := []struct{ key, order string }{
		{"label", "build,web"},
		{"rss", "web,build"},    // 512M > 128M
		{"cpu", "web,build"},    // 80% > 0%
		{"ttl", "build,web"},    // web has no TTL
		{"newest", "web,build"}, // web is younger
		{"label", "build,web"},
	}
	for i, w := range want {
		if i > 0 {
			keys(m, "s")
		}
		mustContain(t, screen(m), "sort "+w.key)
		if got := order(); got != w.order {
			t.Errorf("sort %s: %s, want %s", w.key, got, w.order)
		}
	}
	// The cursor follows the selected workspace across sorts.
	keys(m, "j") // web
	keys(m, "s")
	mustContain(t, screen(m), cursorMark+"web")
}

func TestWorkspaceCard(t *testing.T) {
	m := newTestModel(t, 80, 24, plainRenderer())
	keys(m, "enter")
	s := screen(m)
	mustContain(t, s, "workspace build", wsBuild, "4/5 alive", "created 3m00s ago", "TTL 10m00s",
		"memory 256M · pids 64 (cgroup1)", "quota warn: ok", "COMMANDS (2)", "PIPELINES (1)")
	mustContain(t, lineWith(s, "server"), cursorMark, "running", "4242", "2", "1m05s")
	mustContain(t, lineWith(s, "job"), "exited")
	mustContain(t, lineWith(s, "fan"), "backoff", "3/3", "3", "3.0K/s")
	mustContain(t, lineWith(s, "MEM"), "50%", "of 256M")
	keys(m, "down", "down")
	mustContain(t, lineWith(screen(m), "fan"), cursorMark)
	keys(m, "esc")
	mustContain(t, screen(m), "LABEL", "QUOTA")

	// The open pipeline card, then the workspace, go away.
	keys(m, "enter", "j", "j", "enter", "l")
	snap := fixture{}.snapshot()
	snap.pipelines = nil
	send(m, snap)
	s = screen(m)
	mustContain(t, s, "pipeline 01ARZ3ND is gone", "workspace build")
	if m.logRef[1] == "" || m.logs != nil || m.top() != viewWorkspace {
		t.Errorf("after the run went: view %d", m.top())
	}
	snap.workspaces = snap.workspaces[:1] // web only
	send(m, snap)
	s = screen(m)
	mustContain(t, s, "workspace 01ARZ3ND is gone", cursorMark+"web")
	mustNotContain(t, s, "build ")
}

func TestPipelineCard(t *testing.T) {
	m := newTestModel(t, 100, 30, plainRenderer())
	rates := [][2]uint64{{1000, 100}, {4000, 200}, {8000, 400}, {2000, 800}}
	for i, r := range rates {
		snap := fixture{rates: r, throttled: uint64(i) * 40, rss: 128 << 20}.snapshot()
		snap.at = t0.Add(time.Duration(i+1) * time.Second)
		send(m, snap)
	}
	// A poll soon after the last (brought by an event) replaces the last
	// reading rather than adding one.
	snap := fixture{rates: [2]uint64{2000, 800}, throttled: 120, rss: 128 << 20}.snapshot()
	snap.at = t0.Add(4100 * time.Millisecond)
	send(m, snap)
	snap.at = t0.Add(4200 * time.Millisecond)
	snap.pipelines[0].Splitters[0].ThrottledMs = 160
	send(m, snap)
	keys(m, "enter", "j", "j", "enter")
	s := screen(m)
	mustContain(t, s, "pipeline build/fan", runFan, "backoff",
		"supervisor backoff · restarts 3/5 · next restart in 1s", "DAG", "FLOW CHANNELS")
	// The DAG: the producer, then its consumers.
	lines := strings.Split(s, "\n")
	i := strings.Index(s, "DAG")
	if i < 0 {
		t.Fatal(s)
	}
	var dag []string
	for _, l := range lines {
		if strings.Contains(l, "pid ") {
			dag = append(dag, strings.Join(strings.Fields(l), " "))
		}
	}
	want := []string{"▸ gen running pid 7", "├─▶ count running pid 8", "└─▶ hash running pid 9"}
	if strings.Join(dag, "\n") != strings.Join(want, "\n") {
		t.Errorf("DAG lines:\n%s\nwant\n%s", strings.Join(dag, "\n"), strings.Join(want, "\n"))
	}
	// Each channel: bytes, bytes/s, the sparkline of its readings (the
	// fixture's first snapshot, then the four above), dropped bytes.
	count := lineWith(s, "gen → count")
	mustContain(t, count, "2.0K", "2.0K/s", cmdutil.Sparkline([]float64{1024, 1000, 4000, 8000, 2000}), "0B")
	hash := lineWith(s, "gen → hash")
	mustContain(t, hash, "800B/s", cmdutil.Sparkline([]float64{2048, 100, 200, 400, 800}), "300B")
	// throttled_ms grew by 40 over the last second (the polls 100 and
	// 200 ms later are too close to tell).
	mustContain(t, s, "gen: in 4.0K · throttled 160ms total · THROTTLED +40ms")
	snap.at = t0.Add(6 * time.Second)
	send(m, snap)
	mustContain(t, screen(m), "THROTTLED +40ms")
	snap.at = t0.Add(7 * time.Second)
	send(m, snap)
	mustContain(t, screen(m), "not throttled now")

	// x asks, n cancels.
	keys(m, "x")
	mustContain(t, screen(m), "Stop pipeline build/fan (01ARZ3ND)? y/n")
	keys(m, "n")
	mustNotContain(t, screen(m), "y/n")
	keys(m, "esc")
	mustContain(t, screen(m), "workspace build")
}

func TestDAGShapes(t *testing.T) {
	p := messages.PipelineInfo{Spec: messages.PipelineSpec{
		Nodes: []messages.Node{{Label: "a"}, {Label: "b"}, {Label: "c"}, {Label: "d"}, {Label: "lone"}},
		Edges: []messages.Edge{{From: "a", To: "b"}, {From: "b", To: "c"}, {From: "a", To: "d"}, {From: "d", To: "c"}},
	}}
	var got []string
	for _, d := range dagLines(p) {
		l := d.prefix + d.node
		if d.repeat {
			l += " (again)"
		}
		got = append(got, l)
	}
	want := []string{"a", "├─▶ b", "│   └─▶ c", "└─▶ d", "    └─▶ c", "lone"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("dag:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A cycle has no source; it is still drawn, once.
	cyc := messages.PipelineInfo{Spec: messages.PipelineSpec{Edges: []messages.Edge{{From: "x", To: "y"}, {From: "y", To: "x"}}}}
	if n := len(dagLines(cyc)); n != 3 {
		t.Errorf("cycle: %d lines: %+v", n, dagLines(cyc))
	}
}

func TestConfirmRemove(t *testing.T) {
	m := newTestModel(t, 80, 24, plainRenderer())
	keys(m, "x")
	mustContain(t, screen(m), "Remove workspace build (01ARZ3ND) and stop its processes? y/n")
	// Keys other than y/n do nothing while asking.
	keys(m, "j", "q")
	mustContain(t, screen(m), "cancelled")
	if m.confirm != nil {
		t.Fatal("q did not cancel")
	}
	keys(m, "x")
	_, cmd := m.Update(key("y"))
	if cmd == nil {
		t.Fatal("y gave no command")
	}
	if m.confirm != nil {
		t.Error("the prompt stays after y")
	}
	send(m, actionDoneMsg{act: action{kind: actRemoveWorkspace, id: wsBuild, label: "build"}})
	mustContain(t, screen(m), "removed workspace build")
	send(m, actionDoneMsg{act: action{kind: actStopPipeline, id: runFan, label: "build/fan"},
		err: &api.Error{Status: 409, Code: "conflict", Message: "already stopped"}})
	mustContain(t, screen(m), "Stop pipeline build/fan (01ARZ3ND): already stopped")
}

func TestDaemonGoneBanner(t *testing.T) {
	m := newTestModel(t, 80, 24, plainRenderer())
	gone := fmt.Errorf("%w at /tmp/shp-x/s.sock: connection refused", api.ErrUnreachable)
	_, cmd := m.Update(snapshotMsg{err: gone})
	s := screen(m)
	mustContain(t, s, "daemon not reachable at /tmp/shp-x/s.sock — retrying", "○ down", "data from 12:00:00")
	// The last data stays on screen.
	mustContain(t, s, "build", "web ")
	if cmd == nil {
		t.Error("no retry scheduled")
	}
	if d := m.pollEvery(); d != time.Second {
		t.Errorf("retry every %s", d)
	}
	// A silent daemon counts as gone too.
	send(m, snapshotMsg{err: fmt.Errorf("no answer within 1.5s: %w", errors.New("context deadline exceeded"))})
	mustContain(t, screen(m), "daemon not reachable")
	snap := fixture{rss: 1 << 20}.snapshot()
	_, cmd = m.Update(snap)
	s = screen(m)
	mustNotContain(t, s, "not reachable")
	mustContain(t, s, "daemon is back", "● live")
	if cmd == nil || !m.fullStats {
		t.Error("a reconnect does not fetch the stats histories again")
	}
	// An API error is an answer: the daemon is there.
	send(m, snapshotMsg{err: gone})
	mustContain(t, screen(m), "daemon not reachable")
	send(m, snapshotMsg{err: &api.Error{Status: 500, Code: "internal", Message: "boom"}})
	s = screen(m)
	mustNotContain(t, s, "not reachable")
	mustContain(t, s, "daemon: boom")
	// A daemon that is not there from the start.
	m3 := NewModel(Config{Socket: "/tmp/none.sock", Renderer: plainRenderer()}, nil)
	mustContain(t, screen(m3), "○ connecting", "waiting for the daemon")
	send(m3, snapshotMsg{err: gone})
	mustContain(t, screen(m3), "daemon not reachable at /tmp/none.sock — retrying", "waiting for the daemon")
	// A long socket path is shortened from the left, keeping "retrying".
	long := "/tmp/" + strings.Repeat("d", 120) + "/s.sock"
	m2 := NewModel(Config{Socket: long, Renderer: plainRenderer()}, nil)
	send(m2, tea.WindowSizeMsg{Width: 80, Height: 24}, snapshotMsg{err: gone})
	mustContain(t, screen(m2), "…", "d/s.sock — retrying")
}

func TestEventsTriggerPoll(t *testing.T) {
	m := newTestModel(t, 80, 24, plainRenderer())
	_, cmd := m.Update(feedMsg[messages.Event]{items: []messages.Event{{Time: t0, Kind: messages.EventStarted, Workspace: wsBuild, Label: "build", Command: cmdWeb}}})
	if !m.polling || cmd == nil {
		t.Error("an event did not start a poll")
	}
	// A second event while polling queues one more poll.
	send(m, feedMsg[messages.Event]{items: []messages.Event{{Time: t0, Kind: messages.EventExited, Workspace: wsBuild}}})
	if !m.pollAgain {
		t.Error("no poll queued")
	}
	send(m, fixture{}.snapshot())
	if !m.polling || m.pollAgain {
		t.Error("the queued poll did not start")
	}
	mustContain(t, screen(m), "last event")
	// The feed's end probes the daemon at once.
	m.polling = false
	_, cmd = m.Update(feedEndedMsg[messages.Event]{err: errors.New("stream broken")})
	if !m.polling || cmd == nil {
		t.Error("the end of the event feed did not start a poll")
	}
}

func TestLogPane(t *testing.T) {
	m := newTestModel(t, 80, 24, plainRenderer())
	keys(m, "l")
	mustContain(t, screen(m), "select a command")
	keys(m, "enter", "l")
	s := screen(m)
	mustContain(t, s, "logs build/server", "following", "(no output yet)")
	var lines []messages.LogLine
	for i := range 100 {
		st := messages.Stdout
		if i == 99 {
			st = messages.Stderr
		}
		lines = append(lines, messages.LogLine{Time: t0, Stream: st, Line: fmt.Sprintf("line %d", i)})
	}
	send(m, feedMsg[messages.LogLine]{items: lines})
	s = screen(m)
	// It follows: the newest lines show.
	mustContain(t, s, "err line 99", "line 80", "100 lines")
	if hasLine(s, "line 10") {
		t.Errorf("line 10 shows, the pane does not follow:\n%s", s)
	}
	keys(m, "up", "up", "up")
	mustContain(t, screen(m), "paused")
	keys(m, "G")
	mustContain(t, screen(m), "following")
	send(m, feedEndedMsg[messages.LogLine]{err: errors.New("daemon gone")})
	mustContain(t, screen(m), "log stream ended: daemon gone (l to reopen)")
	keys(m, "esc")
	mustContain(t, screen(m), "workspace build")
	// A pipeline node's log.
	keys(m, "j", "j", "enter", "j", "l")
	mustContain(t, screen(m), "logs build/fan/count")
	if m.logRef != [2]string{wsBuild, runFan + "/count"} {
		t.Errorf("log ref %v", m.logRef)
	}
}

func TestQuitKeys(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		m := newTestModel(t, 80, 24, plainRenderer())
		_, cmd := m.Update(key(k))
		if cmd == nil {
			t.Fatalf("%s: no command", k)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Errorf("%s does not quit", k)
		}
	}
	// q while filtering is a letter.
	m := newTestModel(t, 80, 24, plainRenderer())
	keys(m, "/", "q")
	mustContain(t, screen(m), "/q")
	// Keys read together are taken one by one.
	m = newTestModel(t, 80, 24, plainRenderer())
	keys(m, "jj")
	if m.listIdx != 1 {
		t.Errorf("jj moved to %d", m.listIdx)
	}
}

// TestFits checks that every view fits the terminal: no line wider, no
// more lines than rows, at 80×24 and beyond, with and without colors.
func TestFits(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {200, 60}, {40, 12}} {
		for _, r := range []*lipgloss.Renderer{plainRenderer(), colorRenderer()} {
			m := newTestModel(t, size[0], size[1], r)
			// Many workspaces and events, to overflow the rows.
			snap := fixture{rss: 1 << 30, rates: [2]uint64{1 << 40, 5}}.snapshot()
			for i := range 40 {
				w := snap.workspaces[0]
				w.ID = fmt.Sprintf("01ARZ3NDEKTSV4RRFFQ69G%04d", i)
				w.Spec.Label = strings.Repeat("long-label-", 3) + fmt.Sprint(i)
				w.Spec.Soma.MemoryMaxBytes = 1 << 20
				snap.workspaces = append(snap.workspaces, w)
			}
			send(m, snap)
			var evs []messages.Event
			for i := range 30 {
				evs = append(evs, messages.Event{Time: t0, Kind: messages.EventQuota, Workspace: wsBuild, Label: "build",
					Message: strings.Repeat("very long message ", 10) + fmt.Sprint(i)})
			}
			send(m, feedMsg[messages.Event]{items: evs}, snapshotMsg{err: api.ErrUnreachable})
			check := func(name string) {
				t.Helper()
				v := m.View()
				lines := strings.Split(v, "\n")
				if len(lines) > size[1] {
					t.Errorf("%dx%d %s: %d lines", size[0], size[1], name, len(lines))
				}
				for _, l := range lines {
					if w := lipgloss.Width(l); w > size[0] {
						t.Errorf("%dx%d %s: line of %d cells: %q", size[0], size[1], name, w, ansi.Strip(l))
					}
				}
			}
			check("list")
			keys(m, "G") // the last workspace, then back to build
			check("list, end")
			keys(m, "g", "enter")
			check("workspace")
			keys(m, "j", "j", "enter")
			check("pipeline")
			keys(m, "x")
			check("confirm")
			keys(m, "n", "l")
			for i := range 50 {
				send(m, feedMsg[messages.LogLine]{items: []messages.LogLine{{Line: strings.Repeat("x", 300) + fmt.Sprint(i)}}})
			}
			check("logs")
			keys(m, "esc", "esc", "esc", "/", "l", "o")
			check("filter")
		}
	}
}

// TestNoColor checks that NO_COLOR turns every escape sequence off, and
// that colors are used otherwise.
func TestNoColor(t *testing.T) {
	t.Setenv("TERM", "xterm-256color")
	t.Setenv("COLORTERM", "truecolor")
	t.Setenv("NO_COLOR", "")
	view := func() string {
		r := lipgloss.NewRenderer(io.Discard, termenv.WithTTY(true))
		return newTestModel(t, 80, 24, r).View()
	}
	if v := view(); !strings.Contains(v, "\x1b[") {
		t.Errorf("no colors on a color terminal:\n%s", v)
	}
	t.Setenv("NO_COLOR", "1")
	v := view()
	if strings.Contains(v, "\x1b[") {
		t.Errorf("escape sequences with NO_COLOR:\n%q", v)
	}
	mustContain(t, v, cursorMark+"build")
}

// TestCommandKeys: in the workspace card, S, R and K act on the selected
// command, each after a y/n confirmation (K after choosing the signal).
func TestCommandKeys(t *testing.T) {
	m := newTestModel(t, 120, 30, plainRenderer())
	// Not in the list view.
	keys(m, "S")
	mustContain(t, screen(m), "select a command")
	if m.confirm != nil {
		t.Fatal("S in the list asked for confirmation")
	}
	keys(m, "enter") // the workspace card; the first row is the server command
	c, _ := m.wsRow()
	if c == nil || c.State != messages.CommandRunning {
		t.Fatalf("first row = %+v", c)
	}
	label := "build/" + c.Label
	keys(m, "S")
	mustContain(t, screen(m), "Stop command "+label+" ("+shortID(c.ID)+")? y/n")
	keys(m, "n")
	mustContain(t, screen(m), "cancelled")

	keys(m, "S")
	_, cmd := m.Update(key("y"))
	if cmd == nil || m.confirm != nil {
		t.Fatalf("y: cmd %v, prompt %v", cmd != nil, m.confirm)
	}
	send(m, actionDoneMsg{act: action{kind: actStopCommand, id: c.ID, ws: c.Workspace, label: label},
		cmd: messages.CommandInfo{StopResult: "stopped by SIGTERM after 12ms"}})
	mustContain(t, screen(m), label+": stopped by SIGTERM after 12ms")

	keys(m, "R")
	mustContain(t, screen(m), "Restart command "+label)
	if m.confirm == nil || m.confirm.kind != actRestartCommand || m.confirm.ws != wsBuild || m.confirm.id != c.ID {
		t.Fatalf("restart prompt = %+v", m.confirm)
	}
	keys(m, "y")
	send(m, actionDoneMsg{act: action{kind: actRestartCommand, id: c.ID, label: label}, cmd: messages.CommandInfo{Pid: 777}})
	mustContain(t, screen(m), "restarted "+label+": pid 777")

	// K asks for the signal, then for confirmation.
	keys(m, "K")
	mustContain(t, screen(m), "Signal "+label+": t TERM · h HUP")
	keys(m, "h")
	mustContain(t, screen(m), "Send SIGHUP to command "+label)
	if m.confirm == nil || m.confirm.sig != "HUP" {
		t.Fatalf("signal prompt = %+v", m.confirm)
	}
	keys(m, "y")
	send(m, actionDoneMsg{act: action{kind: actSignalCommand, id: c.ID, label: label, sig: "HUP"}})
	mustContain(t, screen(m), "sent SIGHUP to "+label)
	// Another key cancels the choice.
	keys(m, "K", "z")
	mustContain(t, screen(m), "cancelled")
	if m.confirm != nil || m.sigPick != nil {
		t.Error("z did not cancel")
	}
	// An error is shown with what was asked.
	send(m, actionDoneMsg{act: action{kind: actStopCommand, id: c.ID, label: label},
		err: &api.Error{Status: 409, Code: "conflict", Message: "command server is not running (stopped)"}})
	mustContain(t, screen(m), "Stop command "+label+" ("+shortID(c.ID)+"): command server is not running (stopped)")

	// The ended command: no stop, no signal; restart is offered.
	keys(m, "j")
	if c, _ := m.wsRow(); c == nil || !c.State.Ended() {
		t.Fatalf("second row = %+v", c)
	}
	keys(m, "S")
	mustContain(t, screen(m), "is not running (exited)")
	keys(m, "K")
	if m.sigPick != nil {
		t.Error("K on an ended command")
	}
	keys(m, "R")
	mustContain(t, screen(m), "Restart command build/job")
	keys(m, "n")
	// A pipeline row is not a command.
	keys(m, "j", "S")
	mustContain(t, screen(m), "select a command")
}

// TestCommandKeysInFooter: the workspace card's footer names the command
// keys, and fits 80 columns whole.
func TestCommandKeysInFooter(t *testing.T) {
	m := newTestModel(t, 80, 24, plainRenderer())
	keys(m, "enter")
	lines := strings.Split(screen(m), "\n")
	footer := lines[len(lines)-1]
	mustContain(t, footer, "S stop", "R restart", "K signal", "q quit")
}

// TestCommandProbeStates: a command that runs is one with a process, in
// any of its states (starting before its ready probe passes, ready,
// unhealthy): the card shows its uptime and K signals it; a command
// waiting for its dependencies has no process, so K refuses it.
func TestCommandProbeStates(t *testing.T) {
	for _, tt := range []struct {
		state  messages.CommandState
		pid    int
		uptime string
		signal bool
	}{
		{messages.CommandStarting, 4242, "1m05s", true},
		{messages.CommandReady, 4242, "1m05s", true},
		{messages.CommandUnhealthy, 4242, "1m05s", true},
		{messages.CommandStarting, 0, "-", false},
	} {
		t.Run(fmt.Sprintf("%s pid %d", tt.state, tt.pid), func(t *testing.T) {
			m := newTestModel(t, 120, 30, plainRenderer())
			snap := fixture{rates: [2]uint64{1024, 2048}, rss: 128 << 20}.snapshot()
			snap.commands[0].State, snap.commands[0].Pid = tt.state, tt.pid
			send(m, snap)
			keys(m, "enter")
			mustContain(t, lineWith(screen(m), "server"), cursorMark, string(tt.state), tt.uptime)
			keys(m, "K")
			if got := m.sigPick != nil; got != tt.signal {
				t.Fatalf("K offers a signal: %v, want %v", got, tt.signal)
			}
			if !tt.signal {
				mustContain(t, screen(m), "command server is not running (starting)")
			}
		})
	}
}
