// This file owns removing a per-process cgroup subtree once the engine
// that used it has stopped.

package cmdutil

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// cgroupRoot is where cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// RemoveCgroupParent removes the empty cgroup directories named parent
// (a relative subtree, as given to the engine's CgroupParent) under this
// process's cgroup in every hierarchy. It is best effort: a directory that
// is missing, not empty or not removable is left alone. It only makes sense
// after the engine using parent has stopped.
func RemoveCgroupParent(parent string) {
	if parent == "" || strings.HasPrefix(parent, "/") || strings.Contains(parent, "..") {
		return
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls, path := parts[1], parts[2]
		var dirs []string
		switch {
		case ctrls == "":
			dirs = []string{filepath.Join(cgroupRoot, path, parent), filepath.Join(cgroupRoot, "unified", path, parent)}
		case strings.HasPrefix(ctrls, "name="):
			continue
		default:
			dirs = []string{filepath.Join(cgroupRoot, ctrls, path, parent)}
		}
		for _, d := range dirs {
			_ = os.Remove(d) // rmdir: only an empty group goes
		}
	}
}
