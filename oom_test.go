package shipote

import (
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// TestOOMKillIsReported: a command the kernel's OOM killer ends (its
// workspace's memory cgroup is full) is reported as killed by "oom", with
// an oom_kill event, not as a bare SIGKILL.
func TestOOMKillIsReported(t *testing.T) {
	cgroupV1Usable(t)
	eng := startEngine(t, Config{Limits: "cgroup1", Grace: time.Second})
	ctx := testCtx(t)
	sub := eng.Events(256)
	defer sub.Cancel()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "oomy",
		Soma: messages.Soma{MemoryMaxBytes: 32 << 20}, QuotaEnforce: messages.QuotaOff}); err != nil {
		t.Fatal(err)
	}
	sleeper, err := eng.Exec(ctx, "oomy", native("sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := eng.Exec(ctx, "oomy", allocRef(t, 200))
	if err != nil {
		t.Fatal(err)
	}
	var got messages.CommandInfo
	eventually(t, 30*time.Second, "the allocator to be killed", func() bool {
		got, err = eng.Command(ctx, "oomy", c.ID)
		return err == nil && got.State.Ended()
	})
	if got.Signal != "SIGKILL" || got.KilledBy != "oom" || got.State != messages.CommandFailed {
		t.Fatalf("command %+v, want failed by SIGKILL with killed_by oom", got)
	}
	if !sawEvent(sub, messages.EventOOMKill, "oomy") {
		t.Errorf("no oom_kill event")
	}
	// A SIGKILL that is not the OOM killer's is not reported as one.
	if err := syscall.Kill(sleeper.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the sleeper to be killed", func() bool {
		got, err = eng.Command(ctx, "oomy", sleeper.ID)
		return err == nil && got.State.Ended()
	})
	if got.Signal != "SIGKILL" || got.KilledBy != "" {
		t.Errorf("sleeper %+v, want a plain SIGKILL", got)
	}
}
