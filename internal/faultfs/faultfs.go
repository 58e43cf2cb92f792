// Package faultfs makes a directory refuse writes for tests, the ways a
// real disk does: a small tmpfs that fills up (ENOSPC), and the immutable
// attribute (EPERM, even for root). Both need root; tests that use them
// skip elsewhere and say why.
package faultfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Tmpfs mounts a tmpfs of size bytes on a new directory under t.TempDir()
// and returns it; the mount goes away when the test ends. It skips the
// test when the process is not root, saying why.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs to make ENOSPC needs root")
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		_ = SetImmutable(dir, false)
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a file in dir until the file system is full (ENOSPC) and
// returns the function that removes it again.
func Fill(dir string) (free func() error, err error) {
	path := filepath.Join(dir, ".fill")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				break
			}
			return nil, err
		}
	}
	// The last partial page may still take a few bytes; so may metadata.
	for _, n := range []int{512, 64, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	return func() error { return os.Remove(path) }, nil
}

// SetImmutable sets or clears the immutable attribute of path (chattr +i
// / -i): nothing in an immutable directory can be created, renamed or
// removed, even by root (EPERM). For a directory, the journals directly in
// it (*.journal), which are appended to in place, get the attribute too,
// so that they refuse writes as well.
func SetImmutable(path string, on bool) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		journals, _ := filepath.Glob(filepath.Join(path, "*.journal"))
		for _, j := range journals {
			if err := setImmutable(j, on); err != nil {
				return err
			}
		}
	}
	return setImmutable(path, on)
}

func setImmutable(path string, on bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("get attributes of %s: %w", path, err)
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	v := int(flags)
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, v); err != nil {
		return fmt.Errorf("set attributes of %s: %w", path, err)
	}
	return nil
}

// Immutable makes dir immutable for tests and returns the function that
// clears it; it skips the test when the process is not root or the file
// system has no immutable attribute, saying why.
func Immutable(t testing.TB, dir string) (clear func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the immutable attribute (EPERM for root) needs root")
	}
	if err := SetImmutable(dir, true); err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || strings.Contains(err.Error(), "inappropriate ioctl") {
			t.Skipf("the file system of %s has no immutable attribute: %v", dir, err)
		}
		t.Fatal(err)
	}
	return func() {
		if err := SetImmutable(dir, false); err != nil {
			t.Errorf("clear the immutable attribute: %v", err)
		}
	}
}

// fsImmutableFL is FS_IMMUTABLE_FL of <linux/fs.h>.
const fsImmutableFL = 0x00000010
