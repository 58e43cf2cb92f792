// procstats_test.go covers the scan and the tree sums against real
// processes (CPU of a busy loop, RSS of an allocator, a reparented
// grandchild), the stat parser, and the sparkline renderer.

package procstats

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
)

func newReader(t *testing.T) *Reader {
	t.Helper()
	r, err := NewReader("")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func scan(t *testing.T, r *Reader) *Table {
	t.Helper()
	tab, err := r.Scan()
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// start starts cmd and kills and reaps it at the end of the test.
func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// A group of its own, so that cleanup also kills the children it
	// forks (a shell's background sleeps), which PDEATHSIG does not reach.
	cmd.SysProcAttr.Setpgid = !cmd.SysProcAttr.Setsid
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

func TestNewReaderBadRoot(t *testing.T) {
	if _, err := NewReader("/nonexistent/proc"); err == nil || !strings.Contains(err.Error(), "/nonexistent/proc") {
		t.Errorf("NewReader(/nonexistent/proc) = %v, want an error naming the path", err)
	}
}

func TestScanSelf(t *testing.T) {
	r := newReader(t)
	tab := scan(t, r)
	if tab.Len() < 2 {
		t.Fatalf("only %d processes", tab.Len())
	}
	me, ok := tab.Proc(os.Getpid())
	if !ok {
		t.Fatal("own pid not in the table")
	}
	sid, _ := unix.Getsid(0)
	if me.PPID != os.Getppid() || me.PGID != syscall.Getpgrp() || me.SID != sid {
		t.Errorf("self = %+v; want ppid %d pgid %d sid %d", me, os.Getppid(), syscall.Getpgrp(), sid)
	}
	if me.StartTicks == 0 || me.RSSBytes == 0 || !strings.ContainsRune("RSD", rune(me.State)) {
		t.Errorf("self = %+v; want a start time, an RSS and a live state", me)
	}
	if _, ok := tab.Proc(-1); ok {
		t.Error("Proc(-1) found")
	}
	// A second scan reuses the buffers and sees the same process.
	tab2 := scan(t, r)
	me2, ok := tab2.Proc(os.Getpid())
	if !ok || me2.StartTicks != me.StartTicks || me2.CPUUsec < me.CPUUsec {
		t.Errorf("second scan: %+v, %v; first %+v", me2, ok, me)
	}
}

func TestBusyLoopCPU(t *testing.T) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	start(t, cmd)
	r := newReader(t)
	pid := cmd.Process.Pid
	// On a shared 2-core host other busy processes take their share of the
	// loop's core; as root, give it the highest weight.
	if err := unix.Setpriority(unix.PRIO_PROCESS, pid, -20); err != nil {
		t.Logf("cannot raise the loop's priority (%v); it competes at nice 0", err)
	}
	// Scans about a second apart. Every reading is checked against the
	// kernel's own run time of the loop (/proc/<pid>/schedstat, ns) read
	// just before and after the scan, which holds however loaded the host
	// is; and the loop must show CPU use in three windows. How large a
	// share of a core it gets depends on the host's load, so that is not
	// asserted (bench/ measures the sampler).
	const windows = 3
	deadline := time.Now().Add(60 * time.Second)
	busy := 0
	var (
		prev      bool
		prevStats TreeStats
		prevRun   uint64
		prevT0    time.Time
		known     Known
	)
	for busy < windows && time.Now().Before(deadline) {
		t0 := time.Now()
		before := schedRunNs(t, pid)
		cur := scan(t, r)
		after := schedRunNs(t, pid)
		t1 := time.Now()
		st, k := cur.Tree([]int{pid}, known)
		known = k
		// stat reports whole clock ticks (10 ms) of utime and stime each.
		if lo, hi := before/1000, after/1000; st.CPUUsec+30000 < lo || st.CPUUsec > hi+15000 {
			t.Errorf("read %d us of CPU; the kernel's run time was %d..%d us around the scan", st.CPUUsec, lo, hi)
		}
		if prev {
			// The loop's line was read somewhere between t0 and t1 of each
			// scan (a scan can be long on a loaded host): divide by the
			// longest possible window, so the figure is never inflated.
			pct := 100 * float64(st.CPUUsec-prevStats.CPUUsec) / float64(t1.Sub(prevT0).Microseconds())
			kernel := 100 * float64(after-prevRun) / float64(t1.Sub(prevT0).Nanoseconds())
			t.Logf("busy loop: read %.1f %% of a core; the kernel ran it %.1f %%", pct, kernel)
			if pct > 100*float64(runtime.NumCPU())+1 {
				t.Errorf("read %.1f %% of a core for one single-threaded loop", pct)
			}
			if pct > 0 {
				busy++
			}
		}
		prev, prevStats, prevRun, prevT0 = true, st, before, t0
		time.Sleep(time.Second)
	}
	if busy < windows {
		t.Errorf("the busy loop showed CPU use in %d windows of 1 s in 60 s, want %d", busy, windows)
	}
}

// schedRunNs is the time pid has spent on a CPU, in ns, from
// /proc/<pid>/schedstat.
func schedRunNs(t *testing.T, pid int) uint64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		t.Fatal(err)
	}
	var run uint64
	if _, err := fmt.Sscan(string(data), &run); err != nil {
		t.Fatalf("schedstat %q: %v", data, err)
	}
	return run
}

// readLine reads one line from r.
func readLine(t *testing.T, r io.Reader) string {
	t.Helper()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("read helper line: %q, %v", line, err)
	}
	return strings.TrimSpace(line)
}

func TestAllocatorRSS(t *testing.T) {
	cmd := helperCmd("alloc", "SHIPOTE_TEST_MIB=200")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(t, cmd)
	if line := readLine(t, stdout); line != "ready" {
		t.Fatalf("helper said %q", line)
	}
	tab := scan(t, newReader(t))
	st, known := tab.Tree([]int{cmd.Process.Pid}, nil)
	t.Logf("allocator: %+v", st)
	if st.RSSBytes < 190<<20 {
		t.Errorf("RSS %d MiB, want >= 190 MiB", st.RSSBytes>>20)
	}
	if !slices.Equal(st.Pids, []int{cmd.Process.Pid}) {
		t.Errorf("Pids = %v", st.Pids)
	}
	if p, ok := tab.Proc(cmd.Process.Pid); !ok || known[cmd.Process.Pid] != p.StartTicks {
		t.Errorf("known = %v, want the allocator with its start time", known)
	}
}

func TestReparentedGrandchildStillCounted(t *testing.T) {
	// hold keeps the grandchild alive: it exits when the write end closes.
	holdR, holdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer holdW.Close()
	spawner := helperCmd("spawner", "SHIPOTE_TEST_MIB=200")
	spawner.ExtraFiles = []*os.File{holdR}
	stdin, err := spawner.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := spawner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(t, spawner)
	holdR.Close()
	var grandchild int
	if _, err := fmt.Sscan(readLine(t, stdout), &grandchild); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(grandchild, syscall.SIGKILL) })
	root := []int{spawner.Process.Pid}
	r := newReader(t)

	// While the spawner lives, the grandchild is its descendant, although
	// it is in another session and process group.
	tab := scan(t, r)
	st, known := tab.Tree(root, nil)
	if !slices.Contains(st.Pids, grandchild) || st.RSSBytes < 190<<20 {
		t.Fatalf("tree with the spawner alive = %+v, want the grandchild and >= 190 MiB", st)
	}
	if g, _ := tab.Proc(grandchild); g.SID != grandchild || g.PGID == spawner.Process.Pid {
		t.Errorf("grandchild %+v did not leave the spawner's session and group", g)
	}

	// The spawner exits; the grandchild is reparented.
	stdin.Close()
	if err := spawner.Wait(); err != nil {
		t.Fatalf("spawner: %v", err)
	}
	tab = scan(t, r)
	g, ok := tab.Proc(grandchild)
	if !ok || g.PPID == spawner.Process.Pid {
		t.Fatalf("grandchild %+v, %v: want it alive and reparented", g, ok)
	}
	st, known = tab.Tree(root, known)
	t.Logf("after the spawner exited: %+v (grandchild's parent is now %d)", st, g.PPID)
	if !slices.Equal(st.Pids, []int{grandchild}) || st.RSSBytes < 190<<20 {
		t.Errorf("tree after reparenting = %+v, want only the grandchild with >= 190 MiB", st)
	}
	if lost, _ := tab.Tree(root, nil); len(lost.Pids) != 0 {
		t.Errorf("without the known set the tree is %+v; the test proves nothing", lost)
	}

	// A pid whose start time does not match is another process.
	if st, _ := tab.Tree(nil, Known{grandchild: g.StartTicks + 1}); len(st.Pids) != 0 {
		t.Errorf("reused pid counted: %+v", st)
	}

	// Once it exits, it drops out of the known set.
	holdW.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tab = scan(t, r)
		st, k := tab.Tree(root, known)
		if len(st.Pids) == 0 && len(k) == 0 {
			break
		}
		if p, ok := tab.Proc(grandchild); ok && p.State == 'Z' && len(st.Pids) == 1 {
			break // exited, waiting for init to reap it
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild still counted after it was told to exit: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTreeFollowsChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait")
	start(t, cmd)
	r := newReader(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _ := scan(t, r).Tree([]int{cmd.Process.Pid, cmd.Process.Pid, 999999999}, nil)
		if len(st.Pids) == 3 && st.Pids[0] == cmd.Process.Pid {
			if st.RSSBytes == 0 {
				t.Errorf("tree %+v has no RSS", st)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tree = %+v, want the shell and its two sleeps", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParseStat(t *testing.T) {
	const page = 4096
	good := "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 98765 10000000 512 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseStat([]byte(good), page)
	if err != nil {
		t.Fatal(err)
	}
	want := ProcStat{PID: 1234, PPID: 1, PGID: 1234, SID: 1234, State: 'S', StartTicks: 98765,
		CPUUsec: 300 * usecPerTick, ChildCPUUsec: 10 * usecPerTick, RSSBytes: 512 * page}
	if st != want {
		t.Errorf("parseStat = %+v\nwant %+v", st, want)
	}

	// The parser's own cases are in internal/pidstat.
	if _, err := parseStat([]byte("12 (c) S 1 2"), page); !errors.Is(err, pidstat.ErrMalformed) {
		t.Errorf("parseStat of a short line = %v, want pidstat.ErrMalformed", err)
	}
}
