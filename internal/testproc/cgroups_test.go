package testproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeMountinfo writes a mountinfo file with a cgroup2 mount at a temporary
// directory offering controllers, plus the v1 lines given.
func fakeMountinfo(t *testing.T, controllers string, v1 ...string) string {
	t.Helper()
	dir := t.TempDir()
	unified := filepath.Join(dir, "unified")
	if err := os.Mkdir(unified, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(unified, "cgroup.controllers"), []byte(controllers+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := []string{
		"22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
		"41 31 0:38 / " + unified + " rw,relatime - cgroup2 cgroup2 rw",
	}
	for i, opts := range v1 {
		lines = append(lines, "3"+string(rune('0'+i))+" 25 0:31 / /sys/fs/cgroup/x"+string(rune('0'+i))+" rw,relatime shared:13 - cgroup cgroup "+opts)
	}
	p := filepath.Join(dir, "mountinfo")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRequiredCgroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("HostCgroups lists nothing for a user other than root")
	}
	full := fakeMountinfo(t, "cpuset cpu io memory pids", "rw,memory", "rw,pids", "rw,cpu", "rw,cpuacct")
	bare := fakeMountinfo(t, "", "rw,memory", "rw,pids", "rw,cpu,cpuacct")
	partV1 := fakeMountinfo(t, "cpu memory", "rw,memory", "rw,cpu")
	for _, tc := range []struct {
		name, value, mountinfo string
		want                   []string
		err                    string
	}{
		{name: "unset", value: "", mountinfo: full},
		{name: "zero", value: "0", mountinfo: full},
		{name: "host with everything", value: "1", mountinfo: full, want: []string{Cgroup1, Cgroup2, Cgroup2FS}},
		{name: "cgroup2 without controllers", value: "1", mountinfo: bare, want: []string{Cgroup1, Cgroup2FS}},
		{name: "v1 lacking pids and cpuacct", value: "1", mountinfo: partV1, want: []string{Cgroup2FS}},
		{name: "explicit list", value: "cgroup1, cgroup2", mountinfo: bare, want: []string{Cgroup1, Cgroup2}},
		{name: "unknown backend", value: "cgroup1,cgroup3", err: `unknown backend "cgroup3"`},
		{name: "yes is not a backend", value: "yes", err: `unknown backend "yes"`},
		{name: "missing mountinfo", value: "1", mountinfo: "/nonexistent/mountinfo", err: "list cgroup mounts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := requiredCgroups(tc.value, tc.mountinfo)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("requiredCgroups(%q) = %v, %v; want error containing %q", tc.value, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("requiredCgroups(%q) = %q, want %q", tc.value, got, tc.want)
			}
		})
	}
}

// TestSkipCgroupFailsWhenRequired runs SkipCgroup in a child test binary:
// skipped when the backend is not required, failed naming the backend when
// it is.
func TestSkipCgroupFailsWhenRequired(t *testing.T) {
	if os.Getenv("SHIPOTE_TESTPROC_SKIP_CHILD") == "1" {
		SkipCgroup(t, Cgroup1, "no hierarchy here")
		return
	}
	for _, tc := range []struct {
		require  string
		fail     bool
		contains string
	}{
		{require: "", fail: false, contains: "no hierarchy here"},
		{require: "cgroup2", fail: false, contains: "no hierarchy here"},
		{require: "cgroup1", fail: true, contains: "requires the cgroup1 backend, but it is unusable: no hierarchy here"},
		{require: "bogus", fail: true, contains: `unknown backend "bogus"`},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipCgroupFailsWhenRequired$", "-test.v")
		cmd.Env = append(os.Environ(), "SHIPOTE_TESTPROC_SKIP_CHILD=1", RequireCgroupsEnv+"="+tc.require)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.fail {
			t.Errorf("%s=%q: failed %v, want %v:\n%s", RequireCgroupsEnv, tc.require, failed, tc.fail, out)
		}
		if !strings.Contains(string(out), tc.contains) {
			t.Errorf("%s=%q: output lacks %q:\n%s", RequireCgroupsEnv, tc.require, tc.contains, out)
		}
		if !tc.fail && !strings.Contains(string(out), "--- SKIP") {
			t.Errorf("%s=%q: not skipped:\n%s", RequireCgroupsEnv, tc.require, out)
		}
	}
}
