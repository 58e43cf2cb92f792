// limits_test.go covers what needs no cgroup: id and limit validation,
// Detect's choices and errors, mountinfo parsing, and the rlimit backend.

package limits

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shipote/shipote/internal/proc"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id      string
		wantErr string
	}{
		{"01J9ZB3V4Q8C6R3X1W7M5N2K0P", ""},
		{"a.b_c-D9", ""},
		{strings.Repeat("x", 64), ""},
		{"", "empty name"},
		{".", `name "." is not allowed`},
		{"..", `name ".." is not allowed`},
		{strings.Repeat("x", 65), "65 characters long"},
		{"a/b", `character "/" at offset 1`},
		{"a b", `character " " at offset 1`},
		{"é", `character "\xc3" at offset 0`},
	}
	for _, tt := range tests {
		err := ValidateID(tt.id)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateID(%q) = %v, want nil", tt.id, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidID) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID containing %q", tt.id, err, tt.wantErr)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		l       Limits
		wantErr string
	}{
		{Limits{}, ""},
		{Limits{MemoryMaxBytes: 1 << 30, CPUMax: 1.5, PidsMax: 64, NofileMax: 1024}, ""},
		{Limits{CPUMax: MinCPUMax}, ""},
		{Limits{MemoryMaxBytes: -1}, "memory_max_bytes -1 is negative"},
		{Limits{CPUMax: -0.5}, "cpu_max -0.5 is negative"},
		{Limits{CPUMax: 0.001}, "below the kernel's minimum"},
		{Limits{CPUMax: math.NaN()}, "not a finite number"},
		{Limits{CPUMax: math.Inf(1)}, "not a finite number"},
		{Limits{CPUMax: 1e9}, "absurdly large"},
		{Limits{PidsMax: -3}, "pids_max -3 is negative"},
		{Limits{NofileMax: -1}, "nofile_max -1 is negative"},
	}
	for _, tt := range tests {
		err := tt.l.Validate()
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%+v.Validate() = %v, want nil", tt.l, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidLimits) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%+v.Validate() = %v, want ErrInvalidLimits containing %q", tt.l, err, tt.wantErr)
		}
	}
}

func TestCPUQuota(t *testing.T) {
	for _, tt := range []struct {
		cpu  float64
		want int64
	}{{0, 0}, {0.01, 1000}, {0.5, 50000}, {1.5, 150000}, {2.333333, 233333}} {
		if got := (Limits{CPUMax: tt.cpu}).cpuQuotaUsec(); got != tt.want {
			t.Errorf("cpu_max %v: quota %d, want %d", tt.cpu, got, tt.want)
		}
	}
}

func TestDetectBadOptions(t *testing.T) {
	tests := []struct {
		opts    Options
		wantErr string
	}{
		{Options{Force: "cgroup3"}, `unknown backend "cgroup3"`},
		{Options{Parent: "../escape"}, `parent "../escape": name ".." is not allowed`},
		{Options{Parent: "a//b"}, `parent "a//b": empty name`},
		{Options{Parent: "a b"}, `character " "`},
	}
	for _, tt := range tests {
		_, _, err := Detect(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Detect(%+v) = %v, want error containing %q", tt.opts, err, tt.wantErr)
		}
	}
}

func TestDetectPicksBest(t *testing.T) {
	parent := testParent(t)
	b, why, err := Detect(Options{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveParent(b); err != nil {
			t.Error(err)
		}
	})
	t.Logf("picked %s; rejected: %q", b.Name(), why)
	switch b.Name() {
	case NameCgroup2:
		if why != "" {
			t.Errorf("cgroup2 picked but reason %q given", why)
		}
	case NameCgroup1:
		if !strings.HasPrefix(why, "cgroup2: ") {
			t.Errorf("cgroup1 picked; reason %q should say why cgroup2 was rejected", why)
		}
	case NameRlimit:
		if !strings.Contains(why, "cgroup2: ") || !strings.Contains(why, "cgroup1: ") {
			t.Errorf("rlimit picked; reason %q should say why both cgroup backends were rejected", why)
		}
	default:
		t.Errorf("unknown backend %q", b.Name())
	}
}

func TestParseMountinfo(t *testing.T) {
	in := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:40 / /mnt/with\040space rw - ext4 /dev/vda rw
`
	got, err := parseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("got %d mounts, want 5", len(got))
	}
	if m, ok := findV1Mount(got, "cpuacct"); !ok || m.Point != "/sys/fs/cgroup/cpu,cpuacct" {
		t.Errorf("cpuacct mount = %+v, %v", m, ok)
	}
	if m, ok := findV1Mount(got, "memory"); !ok || m.Root != "/docker/abc" {
		t.Errorf("memory mount = %+v, %v", m, ok)
	}
	if _, ok := findV1Mount(got, "pids"); ok {
		t.Error("pids found but not mounted")
	}
	if got[3].FSType != "cgroup2" || got[3].SuperOpts[1] != "nsdelegate" {
		t.Errorf("cgroup2 mount = %+v", got[3])
	}
	if got[4].Point != "/mnt/with space" {
		t.Errorf("escaped mount point = %q", got[4].Point)
	}

	for _, bad := range []string{"1 2 3\n", "31 23 0:28 / /x rw - tmpfs\n"} {
		if _, err := parseMountinfo(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "malformed line") {
			t.Errorf("parseMountinfo(%q) = %v, want malformed line", bad, err)
		}
	}
}

func TestInMount(t *testing.T) {
	for _, tt := range []struct{ cg, root, want string }{
		{"/a/b", "/", "/a/b"},
		{"/docker/abc/x", "/docker/abc", "/x"},
		{"/docker/abc", "/docker/abc", "/"},
		{"/elsewhere", "/docker/abc", "/elsewhere"},
	} {
		if got := inMount(tt.cg, tt.root); got != tt.want {
			t.Errorf("inMount(%q, %q) = %q, want %q", tt.cg, tt.root, got, tt.want)
		}
	}
}

func TestRlimitBackend(t *testing.T) {
	b, why, err := Detect(Options{Force: NameRlimit})
	if err != nil || why != "" {
		t.Fatalf("Detect(rlimit) = %v, %q", err, why)
	}
	if b.Name() != NameRlimit {
		t.Fatalf("Name = %q", b.Name())
	}
	if _, err := b.Create("a/b", Limits{}); !errors.Is(err, ErrInvalidID) {
		t.Errorf("Create(bad id) = %v, want ErrInvalidID", err)
	}
	if _, err := b.Create("ok", Limits{PidsMax: -1}); !errors.Is(err, ErrInvalidLimits) {
		t.Errorf("Create(bad limits) = %v, want ErrInvalidLimits", err)
	}
	g, err := b.Create("01J9ZB3V4Q8C6R3X1W7M5N2K0P", Limits{MemoryMaxBytes: 1 << 30, CPUMax: 1, PidsMax: 10, NofileMax: 256})
	if err != nil {
		t.Fatal(err)
	}
	want := []proc.Rlimit{{Resource: syscall.RLIMIT_NOFILE, Cur: 256, Max: 256}}
	if got := g.Rlimits(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("Rlimits = %+v, want %+v (nofile only: nothing else maps honestly)", got, want)
	}
	if pl := g.Placement(); pl.CgroupFD != 0 || pl.JoinTasks != nil || pl.LeaveTasks != nil {
		t.Errorf("Placement = %+v, want zero", pl)
	}
	if _, ok, err := g.Usage(); ok || err != nil {
		t.Errorf("Usage ok=%v err=%v, want ok=false", ok, err)
	}
	if pids, err := g.Procs(); len(pids) != 0 || err != nil {
		t.Errorf("Procs = %v, %v", pids, err)
	}
	if g.Source() != SourceProcfs {
		t.Errorf("Source = %q", g.Source())
	}
	if err := g.Kill(syscall.SIGKILL); err != nil {
		t.Error(err)
	}
	if err := g.Remove(context.Background()); err != nil {
		t.Error(err)
	}
	if ids, err := b.Sweep(context.Background()); ids != nil || err != nil {
		t.Errorf("Sweep = %v, %v", ids, err)
	}
	g2, _ := b.Create("x", Limits{})
	if got := g2.Rlimits(); got != nil {
		t.Errorf("Rlimits without nofile_max = %+v, want none", got)
	}
}

func TestResourcesMapping(t *testing.T) {
	l := Limits{MemoryMaxBytes: 512 << 20, CPUMax: 1.5, PidsMax: 64, NofileMax: 1024}

	v2 := (&cgroup2Backend{swap: true}).resources(l)
	if *v2.Memory.Max != 512<<20 || v2.Memory.Swap == nil || *v2.Memory.Swap != 0 {
		t.Errorf("cgroup2 memory = max %v swap %v, want 512 MiB and no swap", v2.Memory.Max, v2.Memory.Swap)
	}
	if v2.CPU.Max != "150000 100000" || v2.Pids.Max != 64 {
		t.Errorf("cgroup2 cpu.max %q pids.max %d", v2.CPU.Max, v2.Pids.Max)
	}
	if got := strings.Join(v2.EnabledControllers(), " "); got != "cpu memory pids" {
		t.Errorf("cgroup2 controllers %q", got)
	}
	unlimited := (&cgroup2Backend{}).resources(Limits{})
	if got := strings.Join(unlimited.EnabledControllers(), " "); got != "cpu memory pids" || len(unlimited.Values()) != 0 {
		t.Errorf("unlimited cgroup2 group: controllers %q, values %v; want all three enabled and nothing written", got, unlimited.Values())
	}

	v1 := (&cgroup1Backend{swap: true}).resources(l)
	if *v1.Memory.Limit != 512<<20 || *v1.Memory.Swap != 512<<20 || *v1.Memory.DisableOOMKiller {
		t.Errorf("cgroup1 memory = %+v, want limit = memsw = 512 MiB with the OOM killer on", v1.Memory)
	}
	if *v1.CPU.Quota != 150000 || *v1.CPU.Period != 100000 || *v1.Pids.Limit != 64 {
		t.Errorf("cgroup1 cpu %d/%d pids %d", *v1.CPU.Quota, *v1.CPU.Period, *v1.Pids.Limit)
	}
	noSwap := (&cgroup1Backend{}).resources(Limits{MemoryMaxBytes: 1 << 20})
	if noSwap.Memory.Swap != nil {
		t.Error("memsw set on a host without swap accounting")
	}
	if u := (&cgroup1Backend{}).resources(Limits{}); u.Memory.Limit != nil || u.CPU != nil || u.Pids != nil {
		t.Errorf("unlimited cgroup1 group writes limits: %+v", u)
	}
}

// TestReadUintFile reads control files of each shape a cgroup file has,
// and the errors: a missing file, a value that is no number, a file too
// long for the buffer.
func TestReadUintFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          uint64
		err           string
	}{
		{"number", "123456789\n", 123456789, ""},
		{"largest", "18446744073709551615\n", math.MaxUint64, ""},
		{"max", "max\n", 0, ""},
		{"spaces", "  42 \n", 42, ""},
		{"empty", "", 0, "invalid syntax"},
		{"word", "abc\n", 0, "invalid syntax"},
		{"negative", "-1\n", 0, "invalid syntax"},
		{"too long", strings.Repeat("1", 100), 0, "longer than 64 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readUintFile(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("readUintFile(%q) = %d, %v; want an error naming the file and saying %q", tc.content, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("readUintFile(%q) = %d, %v; want %d", tc.content, got, err, tc.want)
			}
		})
	}
	_, err := readUintFile(filepath.Join(dir, "absent"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want an error that is os.ErrNotExist", err)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Op != "open" {
		t.Fatalf("missing file: %v, want an *os.PathError of open", err)
	}
}
