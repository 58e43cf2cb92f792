package limits

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
)

func TestParseOwner(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Owner
		ok   bool
	}{
		{"lock /var/lib/shipote/state.json.lock", Owner{LockPath: "/var/lib/shipote/state.json.lock"}, true},
		{"lock /a b/state.json.lock", Owner{LockPath: "/a b/state.json.lock"}, true},
		{"pid 123 456789", Owner{PID: 123, Start: 456789}, true},
		{"lock relative.lock", Owner{}, false},
		{"pid 0 1", Owner{}, false},
		{"pid -3 1", Owner{}, false},
		{"pid 12", Owner{}, false},
		{"pid x 1", Owner{}, false},
		{"", Owner{}, false},
		{"owner", Owner{}, false},
	} {
		got, err := parseOwner(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseOwner(%q) = %+v, %v; want %+v, ok %t", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok {
			if back, err := parseOwner(got.String()); err != nil || back != got {
				t.Errorf("round trip of %+v: %+v, %v", got, back, err)
			}
		}
	}
}

// TestSweepDead: beside a daemon's subtree, the subtrees of owners that are
// gone (a state lock nobody holds, a lock file removed, an ended process)
// are killed and removed; those of live owners and unmarked ones stay.
func TestSweepDead(t *testing.T) {
	for _, name := range cgroupBackends {
		t.Run(name, func(t *testing.T) {
			base := testParent(t)
			// Registered first, so it runs last: once every subtree is gone.
			var baseDirs []string
			t.Cleanup(func() {
				for _, d := range baseDirs {
					if err := unix.Rmdir(d); err != nil && err != unix.ENOENT {
						t.Errorf("remove %s: %v", d, err)
					}
				}
			})
			dir := t.TempDir()
			heldLock := filepath.Join(dir, "held.lock")
			freeLock := filepath.Join(dir, "free.lock")
			for _, p := range []string{heldLock, freeLock} {
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			held, err := os.Open(heldLock)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			if err := unix.Flock(int(held.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				t.Fatal(err)
			}
			ended := exec.Command("true")
			if err := ended.Start(); err != nil {
				t.Fatal(err)
			}
			endedSt, err := pidstat.Read(ended.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			_ = ended.Wait()
			self, err := SelfOwner()
			if err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				sub   string
				owner *Owner
				dead  bool
			}{
				{"free-lock", &Owner{LockPath: freeLock}, true},
				{"no-lock-file", &Owner{LockPath: filepath.Join(dir, "missing.lock")}, true},
				{"ended-pid", &Owner{PID: ended.Process.Pid, Start: endedSt.StartTime}, true},
				{"held-lock", &Owner{LockPath: heldLock}, false},
				{"live-pid", &self, false},
				{"unmarked", nil, false},
			}
			var gone []string
			var dones []<-chan error
			for _, c := range cases {
				b := testBackendParent(t, name, base+"/"+c.sub)
				g, err := b.Create("01J9ZB3V4Q8C6R3X1W7M5N2K0A", Limits{PidsMax: 10})
				if err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command("sleep", "60")
				if err := startPlaced(g.Placement(), cmd); err != nil {
					t.Fatal(err)
				}
				done := reap(t, cmd)
				if c.owner != nil {
					if err := MarkOwner(b, *c.owner); err != nil {
						t.Fatal(err)
					}
				}
				if c.dead {
					gone = append(gone, parentDirs(b)...)
					dones = append(dones, done)
				}
			}
			daemon := testBackendParent(t, name, base+"/daemon")
			if err := MarkOwner(daemon, self); err != nil {
				t.Fatal(err)
			}
			for _, d := range parentDirs(daemon) {
				baseDirs = append(baseDirs, filepath.Dir(d))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			removed, err := SweepDead(ctx, daemon)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(removed)
			slices.Sort(gone)
			if !slices.Equal(removed, gone) {
				t.Fatalf("swept %v\nwant  %v", removed, gone)
			}
			for _, d := range gone {
				if _, err := os.Stat(d); !os.IsNotExist(err) {
					t.Errorf("%s still there (%v)", d, err)
				}
			}
			for _, done := range dones {
				select {
				case err := <-done:
					if !killedBy(err, syscall.SIGKILL) {
						t.Errorf("member of a dead subtree ended with %v, want SIGKILL", err)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("a member of a dead subtree still runs")
				}
			}
			// The free lock was taken only while sweeping.
			f, err := os.Open(freeLock)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				t.Errorf("the swept daemon's lock is still held: %v", err)
			}
		})
	}
}
