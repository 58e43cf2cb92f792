// This file tests changing a live group's limits in place, with a process
// inside, and the change that cannot be made in place.

package limits

import (
	"errors"
	"os/exec"
	"testing"
)

func TestUpdateInPlace(t *testing.T) {
	forEachCgroup(t, func(t *testing.T, b Backend) {
		g := mustCreate(t, b, "upd", Limits{MemoryMaxBytes: 64 << 20, PidsMax: 10, CPUMax: 0.5, NofileMax: 256})
		cmd := exec.Command("sleep", "30")
		if err := startPlaced(g.Placement(), cmd); err != nil {
			t.Fatal(err)
		}
		reap(t, cmd)
		u, ok := g.(Updater)
		if !ok {
			t.Fatalf("%T is not an Updater", g)
		}
		memFile, quotaFile := "memory.max", "cpu.max"
		wantMem, wantQuota, wantUnlimitedQuota := "134217728", "100000 100000", "max 100000"
		if b.Name() == NameCgroup1 {
			memFile, quotaFile = "memory.limit_in_bytes", "cpu.cfs_quota_us"
			wantQuota, wantUnlimitedQuota = "100000", "-1"
		}
		if err := u.Update(Limits{MemoryMaxBytes: 128 << 20, PidsMax: 20, CPUMax: 1, NofileMax: 256}); err != nil {
			t.Fatal(err)
		}
		for file, want := range map[string]string{memFile: wantMem, quotaFile: wantQuota, "pids.max": "20"} {
			if got := readControl(t, b, "upd", file); got != want {
				t.Errorf("after raising: %s = %q, want %q", file, got, want)
			}
		}
		if err := u.Update(Limits{MemoryMaxBytes: 32 << 20, PidsMax: 5, NofileMax: 256}); err != nil {
			t.Fatal(err)
		}
		if got := readControl(t, b, "upd", memFile); got != "33554432" {
			t.Errorf("after lowering: %s = %q", memFile, got)
		}
		if got := readControl(t, b, "upd", quotaFile); got != wantUnlimitedQuota {
			t.Errorf("after lifting cpu: %s = %q, want %q", quotaFile, got, wantUnlimitedQuota)
		}
		if err := u.Update(Limits{NofileMax: 256}); err != nil {
			t.Fatal(err)
		}
		if got := readControl(t, b, "upd", "pids.max"); got != "max" {
			t.Errorf("after lifting pids: pids.max = %q", got)
		}
		if procs, err := g.Procs(); err != nil || len(procs) != 1 || procs[0] != cmd.Process.Pid {
			t.Errorf("the process left the group: %v, %v", procs, err)
		}
		if err := u.Update(Limits{NofileMax: 512}); !errors.Is(err, ErrNotUpdatable) {
			t.Errorf("Update of nofile_max: %v, want ErrNotUpdatable", err)
		}
		if err := u.Update(Limits{PidsMax: -1, NofileMax: 256}); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("Update with a negative limit: %v, want ErrInvalidLimits", err)
		}
	})
	g, err := rlimitBackend{}.Create("r", Limits{NofileMax: 64})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.(Updater).Update(Limits{MemoryMaxBytes: 1 << 20, NofileMax: 64}); err != nil {
		t.Errorf("rlimit Update: %v", err)
	}
	if err := g.(Updater).Update(Limits{}); !errors.Is(err, ErrNotUpdatable) {
		t.Errorf("rlimit Update of nofile_max: %v", err)
	}
}
