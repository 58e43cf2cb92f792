package shipote

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/internal/testproc"
	"github.com/shipote/shipote/messages"
)

func init() {
	switch os.Getenv("SHIPOTE_TEST_HELPER") {
	case "alloc":
		allocHelper()
		os.Exit(0)
	case "forker":
		forkHelper()
		os.Exit(0)
	}
}

// forkHelper tries to start 100 sleeping children, says how many started,
// and waits.
func forkHelper() {
	started := 0
	for range 100 {
		c := exec.Command("/bin/sleep", "30")
		if c.Start() == nil {
			started++
		}
	}
	fmt.Println("started", started)
	time.Sleep(time.Hour)
}

// allocHelper allocates and touches SHIPOTE_ALLOC_MB MiB, says so, and
// waits.
func allocHelper() {
	mb, _ := strconv.Atoi(os.Getenv("SHIPOTE_ALLOC_MB"))
	buf := make([]byte, mb<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	fmt.Println("allocated", mb)
	time.Sleep(time.Hour)
	buf[0] = 2
}

func allocRef(t *testing.T, mb int) messages.CommandRef {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ref := native(self, "-test.run=^$")
	ref.Label = "alloc"
	ref.Payload.Native.Envp = []string{"SHIPOTE_TEST_HELPER=alloc", fmt.Sprintf("SHIPOTE_ALLOC_MB=%d", mb)}
	return ref
}

func latestSample(t *testing.T, eng *Engine, ws string, cond func(messages.Sample) bool, what string) messages.Sample {
	t.Helper()
	var s messages.Sample
	eventually(t, 30*time.Second, what, func() bool {
		h, err := eng.Stats(context.Background(), ws)
		if err != nil || len(h) == 0 {
			return false
		}
		s = h[len(h)-1]
		return cond(s)
	})
	return s
}

func TestStatsCPUAndRSS(t *testing.T) {
	eng := startEngine(t, Config{SampleInterval: 250 * time.Millisecond})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "busy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Exec(ctx, "busy", native("sh", "-c", "while :; do :; done")); err != nil {
		t.Fatal(err)
	}
	// A spinning child shows CPU use. How much depends on the machine's
	// load, so the test asks only for some: the share is bench/'s concern.
	s := latestSample(t, eng, "busy", func(s messages.Sample) bool { return s.CPUPercent > 0 }, "cpu_percent > 0")
	if s.Source != "procfs" || s.CommandsAlive != 1 || s.CPUUsec == 0 || s.CPUPercent > 100*float64(runtime.NumCPU())+1 {
		t.Errorf("sample %+v", s)
	}

	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "fat"}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Exec(ctx, "fat", allocRef(t, 200)); err != nil {
		t.Fatal(err)
	}
	latestSample(t, eng, "fat", func(s messages.Sample) bool { return s.RSSBytes >= 190<<20 }, "rss >= 190 MiB")

	// The allocator as a grandchild in its own session.
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "hidden"}); err != nil {
		t.Fatal(err)
	}
	ref := allocRef(t, 200)
	self := ref.Payload.Native.Exec
	ref.Payload.Native.Exec = "sh"
	// It prints its pid (the host's, from /proc/self) before it becomes the
	// allocator, so that the test kills it even if the engine could not.
	ref.Payload.Native.Argv = []string{"-c", "setsid sh -c 'read -r pid rest </proc/self/stat; echo $pid; exec " +
		self + " -test.run=^$' & sleep 1000"}
	if _, err := eng.Exec(ctx, "hidden", ref); err != nil {
		t.Fatal(err)
	}
	hidden := waitPidLine(t, eng, "hidden", "alloc")
	t.Cleanup(func() { _ = syscall.Kill(hidden, syscall.SIGKILL) })
	latestSample(t, eng, "hidden", func(s messages.Sample) bool { return s.RSSBytes >= 190<<20 }, "rss of a setsid grandchild >= 190 MiB")
}

func TestHistoryIsBounded(t *testing.T) {
	eng := startEngine(t, Config{SampleInterval: 2 * time.Millisecond})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "ring"}); err != nil {
		t.Fatal(err)
	}
	// A process keeps it sampled: an idle workspace keeps its last sample.
	if _, err := eng.Exec(ctx, "ring", native("sleep", "600")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "more than 300 samples taken", func() bool {
		h, _ := eng.Stats(ctx, "ring")
		return len(h) == 300 && h[len(h)-1].UptimeMs > 0
	})
	for range 20 {
		h, _ := eng.Stats(ctx, "ring")
		if len(h) > 300 {
			t.Fatalf("history holds %d samples", len(h))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIdleWorkspaceKeepsItsLastSample: a workspace with no process (none
// running, nothing left in its cgroup or process tree) is read once, then
// keeps that sample: the sampler does not read it again and its published
// view is not encoded again. A command started in it brings fresh samples
// at once; once the command is gone a sample says so and the workspace is
// idle again; a change of its counts without any process (an ended command
// removed) brings one new sample too. A busy workspace beside it counts the
// sampler's passes, so nothing here depends on timing.
func TestIdleWorkspaceKeepsItsLastSample(t *testing.T) {
	for _, backend := range []string{"none", "cgroup1"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "cgroup1" {
				cgroupV1Usable(t)
			}
			eng := startEngine(t, Config{Limits: backend, SampleInterval: 20 * time.Millisecond})
			ctx := testCtx(t)
			if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "clock"}); err != nil {
				t.Fatal(err)
			}
			if _, err := eng.Exec(ctx, "clock", native("sleep", "600")); err != nil {
				t.Fatal(err)
			}
			idle, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "idle"})
			if err != nil {
				t.Fatal(err)
			}
			history := func(ws string) []messages.Sample {
				t.Helper()
				h, err := eng.Stats(ctx, ws)
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			view := func() *messages.WorkspaceView {
				t.Helper()
				views, _, err := eng.WorkspaceViews(ctx, messages.ListQuery{LabelPrefix: "idle"})
				if err != nil || len(views) != 1 {
					t.Fatalf("views of idle: %v, %v", views, err)
				}
				return views[0]
			}
			// passes waits until the clock has n samples more: n passes of
			// the sampler have read every workspace it reads.
			passes := func(n int) {
				t.Helper()
				var from int64
				if clock := history("clock"); len(clock) > 0 {
					from = clock[len(clock)-1].TimestampMs
				}
				eventually(t, 30*time.Second, fmt.Sprintf("%d more samples of the clock", n), func() bool {
					h := history("clock")
					newer := 0
					for _, s := range h {
						if s.TimestampMs > from {
							newer++
						}
					}
					return newer >= n
				})
			}
			// unchanged holds the idle workspace to its history and view
			// over several passes.
			unchanged := func(what string) []messages.Sample {
				t.Helper()
				// Readings under way when it turned idle (its roots reach
				// the sampler batched) may still add a sample or two:
				// first it settles, then it must stay as it is.
				var (
					h0 []messages.Sample
					v0 *messages.WorkspaceView
				)
				eventually(t, 30*time.Second, what+": no new sample over 3 passes", func() bool {
					h0, v0 = history(idle.ID), view()
					passes(3)
					return slices.Equal(history(idle.ID), h0) && view() == v0
				})
				if len(h0) == 0 {
					t.Fatalf("%s: no sample at all", what)
				}
				passes(5)
				if h := history(idle.ID); !slices.Equal(h, h0) {
					t.Errorf("%s: history changed while idle: %d samples, then %d (last %+v)", what, len(h0), len(h), h[len(h)-1])
				}
				if v := view(); v != v0 {
					t.Errorf("%s: view published again while idle: %+v", what, v.Info().Stats)
				}
				return h0
			}

			before := unchanged("new workspace")
			last := before[len(before)-1]
			if last.CommandsAlive != 0 || last.CommandsTotal != 0 || last.RSSBytes != 0 {
				t.Errorf("sample of an empty workspace: %+v", last)
			}

			// A command: fresh samples at every pass while it runs.
			c, err := eng.Exec(ctx, idle.ID, native("sleep", "600"))
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "three samples with the command alive", func() bool {
				alive := 0
				for _, s := range history(idle.ID) {
					if s.CommandsAlive == 1 && s.Source != "" {
						alive++
					}
				}
				return alive >= 3
			})
			if s := view().Info().Stats; s == nil || s.CommandsAlive != 1 {
				t.Errorf("view while the command runs: %+v", s)
			}

			// Gone: a sample says so, then nothing more.
			if _, err := eng.StopCommand(ctx, idle.ID, c.ID); err != nil {
				t.Fatal(err)
			}
			latestSample(t, eng, idle.ID, func(s messages.Sample) bool { return s.CommandsAlive == 0 && s.CommandsTotal == 1 },
				"a sample with the command ended")
			after := unchanged("command ended")
			if last := after[len(after)-1]; last.TimestampMs <= before[len(before)-1].TimestampMs {
				t.Errorf("sample after the command %+v is not newer than the first %+v", last, before[len(before)-1])
			}

			// Counts change with no process: one sample more.
			if _, err := eng.RemoveCommand(ctx, idle.ID, c.ID); err != nil {
				t.Fatal(err)
			}
			latestSample(t, eng, idle.ID, func(s messages.Sample) bool { return s.CommandsTotal == 0 },
				"a sample without the removed command")
			unchanged("command removed")
		})
	}
}

// TestEmptyWorkspaceCountsItself: a workspace where nothing has run, with
// no cgroup, has its sample (nothing counted) without waiting for a pass
// of the sampler, created or restored; the sampling period here is an
// hour, so no pass comes.
func TestEmptyWorkspaceCountsItself(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	ctx := testCtx(t)
	empty := func(eng *Engine, since int64, what string) {
		t.Helper()
		h, err := eng.Stats(ctx, "empty")
		if err != nil || len(h) == 0 {
			t.Fatalf("%s: history %v, %v", what, h, err)
		}
		s := h[len(h)-1]
		if s.TimestampMs < since || s.RSSBytes != 0 || s.CPUUsec != 0 || s.CommandsTotal != 0 || s.Source != "procfs" {
			t.Errorf("%s: sample %+v (taken since %d)", what, s, since)
		}
		views, _, err := eng.WorkspaceViews(ctx, messages.ListQuery{LabelPrefix: "empty"})
		if err != nil || len(views) != 1 || views[0].Info().Stats == nil || *views[0].Info().Stats != s {
			t.Errorf("%s: listed %v, %v; want its sample", what, views, err)
		}
	}
	since := time.Now().UnixMilli()
	eng := startEngine(t, Config{StatePath: path, SampleInterval: time.Hour})
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "empty"}); err != nil {
		t.Fatal(err)
	}
	empty(eng, since, "created")
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	since = time.Now().UnixMilli()
	empty(startEngine(t, Config{StatePath: path, SampleInterval: time.Hour}), since, "restored")
}

// TestPeakSurvivesARestore: the memory peak of a workspace's history is
// carried on after a restart, into the sample its first reading takes
// (here the one a workspace with nothing running yet takes itself).
func TestPeakSurvivesARestore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	ctx := testCtx(t)
	eng := startEngine(t, Config{StatePath: path, SampleInterval: 20 * time.Millisecond})
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "peak"}); err != nil {
		t.Fatal(err)
	}
	c, err := eng.Exec(ctx, "peak", native("sleep", "600"))
	if err != nil {
		t.Fatal(err)
	}
	s := latestSample(t, eng, "peak", func(s messages.Sample) bool { return s.RSSPeakBytes > 0 }, "a peak")
	if _, err := eng.StopCommand(ctx, "peak", c.ID); err != nil {
		t.Fatal(err)
	}
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eng2 := startEngine(t, Config{StatePath: path, SampleInterval: time.Hour})
	h, err := eng2.Stats(ctx, "peak")
	if err != nil || len(h) < 2 {
		t.Fatalf("history after restart: %v, %v", h, err)
	}
	if last := h[len(h)-1]; last.Source != "procfs" || last.RSSPeakBytes < s.RSSPeakBytes {
		t.Errorf("first sample after restart %+v; want the peak %d carried on", last, s.RSSPeakBytes)
	}
}

func TestQuotaWarnOncePerExcursion(t *testing.T) {
	eng := startEngine(t, Config{SampleInterval: 100 * time.Millisecond})
	ctx := testCtx(t)
	sub := eng.Events(256)
	defer sub.Cancel()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "warned",
		Soma: messages.Soma{MemoryMaxBytes: 64 << 20}, QuotaEnforce: messages.QuotaWarn}); err != nil {
		t.Fatal(err)
	}
	c, err := eng.Exec(ctx, "warned", allocRef(t, 100))
	if err != nil {
		t.Fatal(err)
	}
	latestSample(t, eng, "warned", func(s messages.Sample) bool { return s.RSSBytes >= 95<<20 }, "over the limit")
	// Several more samples over the limit.
	time.Sleep(600 * time.Millisecond)
	if err := proc.KillGroup(c.Pid, 9); err != nil {
		t.Fatal(err)
	}
	latestSample(t, eng, "warned", func(s messages.Sample) bool { return s.RSSBytes < 64<<20 }, "back under the limit")
	warnings := 0
	for {
		select {
		case ev := <-sub.C:
			if ev.Kind == messages.EventQuota && ev.Label == "warned" {
				warnings++
				if !strings.Contains(ev.Message, "memory_max_bytes") {
					t.Errorf("warning %q does not name the limit", ev.Message)
				}
			}
			continue
		default:
		}
		break
	}
	if warnings != 1 {
		t.Errorf("%d warnings for one excursion, want 1", warnings)
	}
	c2, _ := eng.Command(ctx, "warned", c.ID)
	if c2.Error != "" {
		t.Errorf("warn mode touched the command: %+v", c2)
	}
}

func TestQuotaKillWithRlimits(t *testing.T) {
	eng := startEngine(t, Config{Limits: "rlimit", SampleInterval: 100 * time.Millisecond})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "killed",
		Soma: messages.Soma{MemoryMaxBytes: 64 << 20}, QuotaEnforce: messages.QuotaKill}); err != nil {
		t.Fatal(err)
	}
	c, err := eng.Exec(ctx, "killed", allocRef(t, 200))
	if err != nil {
		t.Fatal(err)
	}
	var got messages.CommandInfo
	eventually(t, 30*time.Second, "the allocator killed by the sampler", func() bool {
		got, err = eng.Command(ctx, "killed", c.ID)
		return err == nil && got.State.Ended()
	})
	if got.Signal != "SIGKILL" || !strings.Contains(got.Error, "memory_max_bytes") || got.KilledBy != "quota" {
		t.Errorf("command %+v, want killed by SIGKILL with a quota message and killed_by quota", got)
	}
}

// cgroupV1Usable skips t where the host has no cgroup v1 hierarchies it
// may write, or fails it there when SHIPOTE_REQUIRE_CGROUPS requires them.
func cgroupV1Usable(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testproc.SkipCgroup(t, testproc.Cgroup1, "cgroup v1 tests need root to write the hierarchy")
	}
	for _, c := range []string{"memory", "pids", "cpu", "cpuacct"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, "tasks")); err != nil {
			testproc.SkipCgroup(t, testproc.Cgroup1, fmt.Sprintf("host has no cgroup v1 %s controller mounted at /sys/fs/cgroup/%s", c, c))
		}
	}
}

// cgroupDirs lists cgroup directories whose name contains id.
func cgroupDirs(id string) []string {
	var out []string
	for _, c := range []string{"memory", "pids", "cpu", "cpuacct", "unified"} {
		root := filepath.Join("/sys/fs/cgroup", c)
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.Count(strings.TrimPrefix(p, root), "/") > 6 {
				return filepath.SkipDir
			}
			if strings.Contains(d.Name(), id) {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

func TestCgroupV1Limits(t *testing.T) {
	cgroupV1Usable(t)
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "cgroup1", Grace: time.Second, SampleInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if eng.LimitsBackend() != "cgroup1" {
		t.Fatalf("backend %s", eng.LimitsBackend())
	}
	// pids_max stops a fork loop.
	pws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "forky", Soma: messages.Soma{PidsMax: 20}})
	if err != nil {
		t.Fatal(err)
	}
	fork := allocRef(t, 0)
	fork.Label = "forker"
	fork.Payload.Native.Envp = []string{"SHIPOTE_TEST_HELPER=forker"}
	c, err := eng.Exec(ctx, "forky", fork)
	if err != nil {
		t.Fatal(err)
	}
	var started int
	eventually(t, 30*time.Second, "the fork loop's count", func() bool {
		lines, _ := eng.Logs(ctx, "forky", "forker", LogQuery{})
		for _, l := range lines {
			if n, ok := strings.CutPrefix(l.Line, "started "); ok {
				started, _ = strconv.Atoi(n)
				return true
			}
		}
		return false
	})
	desc, _ := proc.Descendants(c.Pid)
	if n := len(desc) + 1; n > 20 || started >= 100 {
		t.Errorf("%d processes (%d children started) in a workspace with pids_max 20", n, started)
	} else {
		t.Logf("fork loop stopped at %d processes (%d of 100 children started)", n, started)
	}
	s := latestSample(t, eng, "forky", func(s messages.Sample) bool { return s.Source == "cgroup1" }, "a cgroup1 sample")
	if s.CommandsAlive != 1 {
		t.Errorf("sample %+v", s)
	}

	// memory_max_bytes: the kernel kills a 200 MiB allocator.
	mws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "small", Soma: messages.Soma{MemoryMaxBytes: 64 << 20}, QuotaEnforce: messages.QuotaOff})
	if err != nil {
		t.Fatal(err)
	}
	a, err := eng.Exec(ctx, "small", allocRef(t, 200))
	if err != nil {
		t.Fatal(err)
	}
	var got messages.CommandInfo
	eventually(t, 30*time.Second, "the allocator killed by the kernel", func() bool {
		got, err = eng.Command(ctx, "small", a.ID)
		return err == nil && got.State.Ended()
	})
	if got.Signal != "SIGKILL" {
		t.Errorf("allocator ended with %+v, want SIGKILL from the OOM killer", got)
	}
	if dirs := cgroupDirs(pws.ID); len(dirs) == 0 {
		t.Errorf("no cgroup directory for workspace %s while it runs", pws.ID)
	}
	if _, err := eng.RemoveWorkspace(ctx, "forky", time.Second); err != nil {
		t.Fatal(err)
	}
	if dirs := cgroupDirs(pws.ID); len(dirs) != 0 {
		t.Errorf("cgroup directories left after removal: %v", dirs)
	}
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if dirs := cgroupDirs(mws.ID); len(dirs) != 0 {
		t.Errorf("cgroup directories left after the engine stopped: %v", dirs)
	}
}

// Removing a workspace while the engine forks into its cgroup must not
// signal the engine itself (on cgroup v1 the spawning thread sits in the
// group during a fork, so the group lists the engine's pid).
func TestCgroupV1RemoveDuringForksSparesTheEngine(t *testing.T) {
	cgroupV1Usable(t)
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "cgroup1", Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(context.Background())
	ctx := testCtx(t)
	for i := range 25 {
		label := fmt.Sprintf("loop-%d", i)
		if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: label}); err != nil {
			t.Fatal(err)
		}
		ref := native("true")
		ref.Supervision.Restart = &messages.RestartPolicy{On: messages.RestartAlways, BackoffMs: 1, MaxBackoffMs: 1}
		if _, err := eng.Exec(ctx, label, ref); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if _, err := eng.RemoveWorkspace(ctx, label, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Reaching this line means the engine's process was not killed.
}
