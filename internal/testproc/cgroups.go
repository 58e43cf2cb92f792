package testproc

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// RequireCgroupsEnv names the environment variable that turns a cgroup
// test's skip into a failure. Its value is either "1", meaning every
// backend this host mounts (see HostCgroups), or a comma-separated list of
// backend names. .ci/run sets it to "1" when it runs as root and can create
// a cgroup, so that a test which cannot use a backend the host has fails
// instead of passing quietly.
const RequireCgroupsEnv = "SHIPOTE_REQUIRE_CGROUPS"

// The backend names RequireCgroupsEnv understands.
const (
	// Cgroup1 is writable cgroup v1 hierarchies for the memory, pids, cpu
	// and cpuacct controllers.
	Cgroup1 = "cgroup1"
	// Cgroup2 is a cgroup2 hierarchy whose root offers the cpu, memory and
	// pids controllers (what the cgroup2 limits backend needs).
	Cgroup2 = "cgroup2"
	// Cgroup2FS is a writable cgroup2 mount, with or without controllers
	// (enough to spawn into a group with clone3 CLONE_INTO_CGROUP).
	Cgroup2FS = "cgroup2fs"
)

var cgroupBackends = []string{Cgroup1, Cgroup2, Cgroup2FS}

// SkipCgroup skips t because backend is unusable, or fails it when
// RequireCgroupsEnv requires that backend. why says what is missing.
func SkipCgroup(t testing.TB, backend, why string) {
	t.Helper()
	required, err := requiredCgroups(os.Getenv(RequireCgroupsEnv), "/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(required, backend) {
		t.Fatalf("%s=%s requires the %s backend, but it is unusable: %s", RequireCgroupsEnv, os.Getenv(RequireCgroupsEnv), backend, why)
	}
	t.Skip(why)
}

// requiredCgroups parses a RequireCgroupsEnv value; mountinfo is read for
// "1".
func requiredCgroups(value, mountinfo string) ([]string, error) {
	value = strings.TrimSpace(value)
	switch value {
	case "", "0":
		return nil, nil
	case "1":
		return HostCgroups(mountinfo)
	}
	var out []string
	for _, name := range strings.Split(value, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(cgroupBackends, name) {
			return nil, fmt.Errorf("%s: unknown backend %q; want 1 or a comma-separated list of %s", RequireCgroupsEnv, name, strings.Join(cgroupBackends, ", "))
		}
		out = append(out, name)
	}
	return out, nil
}

// HostCgroups lists the backends the host mounts, judged from mountinfo
// alone (not from the code under test): Cgroup1 when cgroup v1 hierarchies
// hold memory, pids, cpu and cpuacct; Cgroup2FS when a cgroup2 file system
// is mounted; Cgroup2 when that mount's root offers cpu, memory and pids.
// Writing a hierarchy needs root, so it lists nothing for another user.
func HostCgroups(mountinfo string) ([]string, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("list cgroup mounts: %w", err)
	}
	defer f.Close()
	v1 := map[string]bool{}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "36 25 0:31 / /sys/fs/cgroup/pids rw,relatime shared:13 - cgroup cgroup rw,pids"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, sfields := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(sfields) < 3 {
			continue
		}
		switch sfields[0] {
		case "cgroup":
			for _, o := range strings.Split(sfields[2], ",") {
				v1[o] = true
			}
		case "cgroup2":
			if !slices.Contains(out, Cgroup2FS) {
				out = append(out, Cgroup2FS)
			}
			ctl, err := os.ReadFile(filepath.Join(fields[4], "cgroup.controllers"))
			have := strings.Fields(string(ctl))
			if err == nil && slices.Contains(have, "cpu") && slices.Contains(have, "memory") && slices.Contains(have, "pids") && !slices.Contains(out, Cgroup2) {
				out = append(out, Cgroup2)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("list cgroup mounts: %w", err)
	}
	if v1["memory"] && v1["pids"] && v1["cpu"] && v1["cpuacct"] {
		out = append(out, Cgroup1)
	}
	slices.Sort(out)
	return out, nil
}
