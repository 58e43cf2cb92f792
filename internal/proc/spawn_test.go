// spawn_test.go checks the Spawner with real processes: environment, cwd,
// stdio, statuses, process groups, rlimits, credentials, PDEATHSIG.

package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestStartEnvIsExactlySpecEnv(t *testing.T) {
	s := newSpawner(t)
	env := []string{"A=1", "B=two words", "EMPTY="}
	st, out := run(t, s, Spec{Path: "/usr/bin/env", Env: env})
	if !st.Success() {
		t.Fatalf("status %v", st)
	}
	if want := strings.Join(env, "\n") + "\n"; out != want {
		t.Fatalf("env printed %q, want %q", out, want)
	}
	// nil Env: nothing at all, not the daemon's environment.
	t.Setenv("SHIPOTE_LEAK_CHECK", "leaked")
	st, out = run(t, s, Spec{Path: "/usr/bin/env"})
	if !st.Success() || out != "" {
		t.Fatalf("nil Env: status %v, printed %q", st, out)
	}
}

func TestStartDir(t *testing.T) {
	s := newSpawner(t)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, out := run(t, s, Spec{Path: "/usr/bin/pwd", Dir: dir}); out != dir+"\n" {
		t.Fatalf("pwd printed %q, want %q", out, dir)
	}
	if _, out := run(t, s, Spec{Path: "/usr/bin/pwd"}); out != "/\n" {
		t.Fatalf("default Dir: pwd printed %q, want /", out)
	}
	_, err = s.Start(Spec{Path: "/usr/bin/pwd", Dir: filepath.Join(dir, "missing")})
	if err == nil || !strings.Contains(err.Error(), "chdir") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing Dir: err %v, want a chdir error", err)
	}
}

func TestStartStdio(t *testing.T) {
	s := newSpawner(t)
	inR, inW := pipe(t)
	outR, outW := pipe(t)
	errR, errW := pipe(t)
	p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", "read x; echo out:$x; echo err:$x >&2"},
		Stdin: inR, Stdout: outW, Stderr: errW})
	if err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	errW.Close()
	fmt.Fprintln(inW, "hello")
	if got := readLine(t, outR); got != "out:hello" {
		t.Fatalf("stdout %q", got)
	}
	if got := readLine(t, errR); got != "err:hello" {
		t.Fatalf("stderr %q", got)
	}
	if st := waitFor(t, p, 10*time.Second); !st.Success() {
		t.Fatalf("status %v", st)
	}
}

func TestStartNilStdioIsDevNull(t *testing.T) {
	s := newSpawner(t)
	// stdin at EOF at once; stdout and stderr writable.
	st, _ := run(t, s, Spec{Path: "/bin/sh", Args: []string{"-c", "read x && exit 9; echo x >&2; exit 0"}})
	if !st.Success() {
		t.Fatalf("status %v", st)
	}
}

func TestStartExtraFiles(t *testing.T) {
	s := newSpawner(t)
	r, w := pipe(t)
	p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", "echo extra >&3"}, ExtraFiles: []*os.File{w}})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := readLine(t, r); got != "extra" {
		t.Fatalf("fd 3 got %q", got)
	}
	waitFor(t, p, 10*time.Second)
}

func TestExitStatuses(t *testing.T) {
	s := newSpawner(t)
	tests := []struct {
		name       string
		script     string
		code       int
		sig        syscall.Signal
		success    bool
		str        string
		shell      int
		coreDumped bool
	}{
		{name: "success", script: "exit 0", code: 0, success: true, str: "exit 0", shell: 0},
		{name: "exit code", script: "exit 3", code: 3, str: "exit 3", shell: 3},
		{name: "killed", script: "kill -KILL $$", code: -1, sig: syscall.SIGKILL, str: "signal SIGKILL", shell: 137},
		{name: "terminated", script: "kill -TERM $$", code: -1, sig: syscall.SIGTERM, str: "signal SIGTERM", shell: 143},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := run(t, s, Spec{Path: "/bin/sh", Args: []string{"-c", tc.script}})
			if st.Code != tc.code || st.Signal != tc.sig || st.Success() != tc.success ||
				st.String() != tc.str || st.ShellCode() != tc.shell || st.Err != nil {
				t.Fatalf("status %+v (%v, shell %d); want code %d signal %v %q shell %d",
					st, st, st.ShellCode(), tc.code, tc.sig, tc.str, tc.shell)
			}
		})
	}
}

func TestExitStatusString(t *testing.T) {
	tests := []struct {
		st   ExitStatus
		want string
	}{
		{ExitStatus{}, "exit 0"},
		{ExitStatus{Code: -1, Signal: syscall.SIGSEGV, CoreDumped: true}, "signal SIGSEGV (core dumped)"},
		{ExitStatus{Code: -1, Signal: 99}, "signal signal 99"},
		{ExitStatus{Code: -1, Err: errors.New("boom")}, "wait error: boom"},
	}
	for _, tc := range tests {
		if got := tc.st.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st, got, tc.want)
		}
	}
	if (ExitStatus{Code: -1, Err: errors.New("x")}).Success() {
		t.Error("a wait error is not success")
	}
}

func TestOwnProcessGroup(t *testing.T) {
	s := newSpawner(t)
	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	pgid, err := unix.Getpgid(p.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid != p.Pid {
		t.Errorf("getpgid(%d) = %d, want the child's own pid", p.Pid, pgid)
	}
	if p.Started.IsZero() {
		t.Error("Started not set")
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := waitFor(t, p, 10*time.Second); st.Signal != syscall.SIGTERM {
		t.Fatalf("status %v, want SIGTERM", st)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("Signal after Wait: %v, want os.ErrProcessDone", err)
	}
}

func TestWaitTwiceSameStatus(t *testing.T) {
	s := newSpawner(t)
	p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", "exit 7"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	sts := make([]ExitStatus, 4)
	for i := range sts {
		wg.Go(func() { sts[i] = p.Wait() })
	}
	wg.Wait()
	for i, st := range sts {
		if st.Code != 7 || st.Err != nil {
			t.Fatalf("Wait #%d: %v", i, st)
		}
	}
}

func TestWaitDoesNotWaitForGrandchildHoldingThePipe(t *testing.T) {
	s := newSpawner(t)
	r, w := pipe(t)
	p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", bgSleep + " & exit 3"}, Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	grandchild := atoi(t, readLine(t, r))
	if st := waitFor(t, p, 10*time.Second); st.Code != 3 {
		t.Fatalf("status %v, want exit 3", st)
	}
	if gone(grandchild) {
		t.Fatal("the grandchild should still hold the pipe")
	}
	if err := KillGroup(p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "grandchild still alive", func() bool { return gone(grandchild) })
}

func TestRlimitNofile(t *testing.T) {
	s := newSpawner(t)
	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"},
		Rlimits: []Rlimit{{Resource: unix.RLIMIT_NOFILE, Cur: 123, Max: 456}}})
	if err != nil {
		t.Fatal(err)
	}
	defer waitFor(t, p, 10*time.Second)
	defer p.Signal(syscall.SIGKILL)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Max open files\s+123\s+456\s+files\s*$`).Match(b) {
		t.Fatalf("limits:\n%s", b)
	}
}

func TestRlimitFailureKillsChild(t *testing.T) {
	s := newSpawner(t)
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		t.Skip("no /proc/sys/fs/nr_open:", err)
	}
	tooMany := uint64(atoi(t, strings.TrimSpace(string(b)))) + 1 // above nr_open: EPERM even for root
	// A first process, so that the Spawner's namespace init (made by the
	// first Start) is among the children before.
	if st, _ := run(t, s, Spec{Path: "/bin/true"}); !st.Success() {
		t.Fatalf("true: %v", st)
	}
	before, err := Descendants(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"},
		Rlimits: []Rlimit{{Resource: unix.RLIMIT_NOFILE, Cur: tooMany, Max: tooMany}}})
	if err == nil || !strings.Contains(err.Error(), "set rlimit 7") {
		t.Fatalf("err %v, want a set rlimit error", err)
	}
	after, err := Descendants(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("children before %v, after the failed Start %v", before, after)
	}
}

func TestCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change uid")
	}
	s := newSpawner(t)
	st, out := run(t, s, Spec{Path: "/bin/sh", Args: []string{"-c", "id -u; id -g; id -G"},
		Env: []string{"PATH=/usr/bin:/bin"}, Credential: &Credential{UID: 65534, GID: 65534}})
	if !st.Success() || out != "65534\n65534\n65534\n" {
		t.Fatalf("status %v, printed %q", st, out)
	}
}

func TestCheckCredential(t *testing.T) {
	cred := &Credential{UID: 1000, GID: 1001}
	if err := checkCredential(nil, 1000); err != nil {
		t.Fatal(err)
	}
	if err := checkCredential(cred, 0); err != nil {
		t.Fatal(err)
	}
	err := checkCredential(cred, 1234)
	if !errors.Is(err, ErrNotRoot) || !strings.Contains(err.Error(), "uid 1000 gid 1001") ||
		!strings.Contains(err.Error(), "uid 1234") {
		t.Fatalf("err %v", err)
	}
}

func TestStartRefusesBadSpec(t *testing.T) {
	s := newSpawner(t)
	good := Spec{Path: "/usr/bin/true"}
	tests := []struct {
		name   string
		edit   func(*Spec)
		substr string
	}{
		{"relative path", func(s *Spec) { s.Path = "true" }, `path "true" is not absolute and clean`},
		{"unclean path", func(s *Spec) { s.Path = "/usr/bin/../bin/true" }, `is not absolute and clean`},
		{"NUL in arg", func(s *Spec) { s.Args = []string{"a", "b\x00"} }, `args[1] "b\x00" contains a NUL byte`},
		{"env without =", func(s *Spec) { s.Env = []string{"A=1", "B"} }, `env[1] "B" is not KEY=VALUE`},
		{"env with empty key", func(s *Spec) { s.Env = []string{"=x"} }, `env[0] "=x" is not KEY=VALUE`},
		{"NUL in env", func(s *Spec) { s.Env = []string{"A=\x00"} }, `env[0] "A=\x00" contains a NUL byte`},
		{"relative dir", func(s *Spec) { s.Dir = "tmp" }, `dir "tmp" is not absolute`},
		{"unknown rlimit", func(s *Spec) { s.Rlimits = []Rlimit{{Resource: 99, Cur: 1, Max: 1}} }, `rlimits[0]: unknown resource 99`},
		{"soft above hard", func(s *Spec) { s.Rlimits = []Rlimit{{Resource: unix.RLIMIT_NOFILE, Cur: 10, Max: 5}} },
			`rlimits[0]: soft limit 10 above hard limit 5`},
		{"negative cgroup fd", func(s *Spec) { s.Placement.CgroupFD = -3 }, `negative cgroup fd -3`},
		{"join without leave", func(s *Spec) { s.Placement.JoinTasks = []string{"/sys/fs/cgroup/pids/x/tasks"} },
			`JoinTasks without LeaveTasks`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := good
			tc.edit(&spec)
			p, err := s.Start(spec)
			if p != nil || !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("Start: %v, %v; want ErrInvalidSpec containing %q", p, err, tc.substr)
			}
		})
	}
}

func TestStartExecFailure(t *testing.T) {
	s := newSpawner(t)
	_, err := s.Start(Spec{Path: "/etc/passwd"})
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Fatalf("err %v, want permission denied naming the path", err)
	}
	_, err = s.Start(Spec{Path: "/nonexistent/tool"})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v, want not exist", err)
	}
}

func TestStartAfterClose(t *testing.T) {
	s := NewSpawner()
	s.Close()
	s.Close() // idempotent
	if _, err := s.Start(Spec{Path: "/usr/bin/true"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", err)
	}
}

func TestSpawnerNotOnMainThread(t *testing.T) {
	s := newSpawner(t)
	if s.tid == os.Getpid() || s.tid <= 0 {
		t.Fatalf("spawning thread %d (pid %d)", s.tid, os.Getpid())
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", s.tid)); err != nil {
		t.Fatalf("spawning thread: %v", err)
	}
}

func TestCloseKillsChildren(t *testing.T) {
	s := NewSpawner()
	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	tid := s.tid
	s.Close()
	if st := waitFor(t, p, 10*time.Second); st.Signal != syscall.SIGKILL {
		t.Fatalf("status %v, want SIGKILL from PDEATHSIG", st)
	}
	eventually(t, 5*time.Second, "spawning thread still exists", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid))
		return err != nil
	})
}

func TestPdeathsigWhenDaemonKilled(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=pdeathsig", "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sleepPid := atoi(t, readLine(t, out))
	if gone(sleepPid) {
		t.Fatalf("sleep %d not running", sleepPid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	eventually(t, 5*time.Second, fmt.Sprintf("sleep %d survived its daemon", sleepPid), func() bool { return gone(sleepPid) })
}

func TestConcurrentSpawns(t *testing.T) {
	s := newSpawner(t)
	const workers, each = 8, 25
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", fmt.Sprintf("exit %d", (w+i)%7)}})
				if err != nil {
					errs <- err
					continue
				}
				if st := p.Wait(); st.Code != (w+i)%7 {
					errs <- fmt.Errorf("worker %d spawn %d: %v", w, i, st)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNoFdLeak(t *testing.T) {
	s := newSpawner(t)
	run(t, s, Spec{Path: "/usr/bin/true"}) // opens /dev/null once
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := count()
	for range 20 {
		p, err := s.Start(Spec{Path: "/usr/bin/true"})
		if err != nil {
			t.Fatal(err)
		}
		p.Wait()
	}
	if after := count(); after > before {
		t.Fatalf("fds: %d before, %d after 20 spawns", before, after)
	}
}

func TestSpawnerLeavesTheMainThread(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=mainthread", "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v (printed %q)", err, out)
	}
	var tid, pid int
	var status string
	if _, err := fmt.Sscanf(string(out), "%d %d %s", &tid, &pid, &status); err != nil {
		t.Fatalf("helper printed %q: %v", out, err)
	}
	if tid == pid {
		t.Fatalf("the spawning thread is the main thread (%d)", tid)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, "signal SIGKILL") {
		t.Fatalf("helper printed %q; want the child killed by SIGKILL at Close", got)
	}
}
