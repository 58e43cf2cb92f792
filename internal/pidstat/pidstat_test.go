package pidstat

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tail is fields 7 to 52 of a stat line: tty 0, tpgid -1, flags 4194560,
// utime 250, stime 50, cutime 7, cstime 3, start 98765, rss 512.
const tail = " 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 98765 10000000 512 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"

func TestParse(t *testing.T) {
	base := Stat{State: 'S', PPID: 1, PGRP: 1234, SID: 1234, Flags: 4194560,
		UTime: 250, STime: 50, CUTime: 7, CSTime: 3, StartTime: 98765, RSS: 512}
	for _, tt := range []struct {
		name, line, comm string
		edit             func(*Stat)
	}{
		{name: "plain", line: "1234 (sleep) S 1 1234 1234" + tail, comm: "sleep"},
		{name: "spaces", line: "1234 (my odd name) S 1 1234 1234" + tail, comm: "my odd name"},
		{name: "parentheses", line: "1234 (my (odd) name) S 1 1234 1234" + tail, comm: "my (odd) name"},
		{name: "comm that looks like fields", line: "1234 (a) R 1 (b) S 1 1234 1234" + tail, comm: "a) R 1 (b"},
		{name: "comm ending in a parenthesis", line: "1234 (x)) S 1 1234 1234" + tail, comm: "x)"},
		{name: "only parentheses", line: "1234 ()()) S 1 1234 1234" + tail, comm: ")()"},
		{name: "empty comm", line: "1234 () S 1 1234 1234" + tail, comm: ""},
		{name: "newline in comm", line: "1234 (a\nb) S 1 1234 1234" + tail, comm: "a\nb"},
		{name: "kernel thread name", line: "1234 (kworker/u8:2-events_unbound) I 2 0 0" + tail, comm: "kworker/u8:2-events_unbound",
			edit: func(s *Stat) { s.State, s.PPID, s.PGRP, s.SID = 'I', 2, 0, 0 }},
		{name: "zombie", line: "1234 (sh) Z 1 1234 1234" + tail, comm: "sh", edit: func(s *Stat) { s.State = 'Z' }},
		{name: "stops after field 24", line: "1234 (sh) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 98765 10000000 512", comm: "sh"},
		{name: "cut inside field 30", line: "1234 (sh) S 1 1234 1234" + tail[:100], comm: "sh"},
		{name: "negative child times", line: "1234 (sh) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 -7 -3 20 0 1 0 98765 10000000 512\n", comm: "sh",
			edit: func(s *Stat) { s.CUTime, s.CSTime = -7, -3 }},
		{name: "flags above int32", line: "1234 (sh) S 1 1234 1234 0 -1 18446744073709551615 100 0 0 0 250 50 7 3 20 0 1 0 98765 10000000 512\n", comm: "sh",
			edit: func(s *Stat) { s.Flags = 1<<64 - 1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := Parse([]byte(tt.line))
			if err != nil {
				t.Fatal(err)
			}
			want := base
			want.PID = 1234
			if tt.edit != nil {
				tt.edit(&want)
			}
			if string(st.Comm) != tt.comm {
				t.Errorf("Comm = %q, want %q", st.Comm, tt.comm)
			}
			st.Comm = nil
			if !reflect.DeepEqual(st, want) {
				t.Errorf("Parse = %+v\nwant  %+v", st, want)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for _, tt := range []struct{ line, wantErr string }{
		{"", "no (comm)"},
		{"12 comm S 1", "no (comm)"},
		{"(c) S 1 2 3", "no (comm)"},
		{"12 (c)", "no (comm)"},
		{"12 (c)S 1 2 3", "no (comm)"},
		{"x (c) S 1 2 3", "bad pid"},
		{"-12 (c) S 1 2 3", "bad pid"},
		{"12 (c) S 1 2", "only 5 fields"},
		{"12 (c) S 1  2 3", "field 5 missing"},
		{"12 (c) S 1 2 3 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 100", "only 23 fields"},
		{"12 (c) S one 2 3", `field 4 "one" is not a number`},
		{"12 (c) SS 1 2 3", `field 3 "SS" is not a state`},
		{"12 (c) S 1 2 3 0 -1 -5 0 0 0 0 1 1 0 0 20 0 1 0 5 100 7\n", `field 9 "-5" is not a number`},
		{"12 (c) S 1 2 3 0 -1 18446744073709551616 0 0 0 0 1 1 0 0 20 0 1 0 5 100 7\n", "field 9"},
		{"12 (c) S 1 2 3 0 -1 0 0 0 0 0 1x 1 0 0 20 0 1 0 5 100 7\n", `field 14 "1x" is not a number`},
	} {
		_, err := Parse([]byte(tt.line))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed containing %q", tt.line, err, tt.wantErr)
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	line := []byte("1234 (my (odd) name) S 1 1234 1234" + tail)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Parse(line); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Parse allocates %v times per call", n)
	}
}

// TestReadRealProcess starts sleep under a name with spaces and
// parentheses (the kernel takes comm from the executable's name) and reads
// it back.
func TestReadRealProcess(t *testing.T) {
	const name = "a) R 1 (b c"
	bin := filepath.Join(t.TempDir(), name)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	if err := os.Symlink(sleep, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pid := cmd.Process.Pid
	var st Stat
	// exec replaces the child's comm (the parent's name until then).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, err = Read(pid); err != nil {
			t.Fatal(err)
		}
		if string(st.Comm) == name || time.Now().After(deadline) {
			break
		}
	}
	if string(st.Comm) != name {
		t.Fatalf("Comm = %q, want %q", st.Comm, name)
	}
	if st.PID != pid || st.PPID != os.Getpid() || st.PGRP != pid || st.StartTime == 0 {
		t.Errorf("Read(%d) = %+v: want its pid, this test as parent, its own group and a start time", pid, st)
	}

	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := Read(pid); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a reaped pid = %v, want fs.ErrNotExist", err)
	}
}

func TestReadSelf(t *testing.T) {
	buf := make([]byte, HeadBytes)
	st, err := ReadInto(os.Getpid(), buf)
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.PPID != os.Getppid() || st.RSS <= 0 || string(st.Comm) == "" {
		t.Errorf("ReadInto(self) = %+v", st)
	}
}

func BenchmarkParse(b *testing.B) {
	line := []byte("1234 (my (odd) name) S 1 1234 1234" + tail)
	for b.Loop() {
		if _, err := Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}
