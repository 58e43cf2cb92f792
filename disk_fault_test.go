package shipote

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/faultfs"
	"github.com/shipote/shipote/messages"
)

// keptFixture is a workspace entry that cannot be restored (its workdir
// does not exist): every generation must find it in the file, byte for
// byte.
const keptFixture = `{"id":"01JA2Q7X9K3M5N8P4R6T0V2W1Y","spec":{"label":"unrestorable","permissions":{"workdir":"/nonexistent/shipote-soak"}},"stats_history":[]}`

// TestFaultInjectionDiskRefuses kills engines with -9 at random moments
// while their state directory refuses writes now and then (a full tmpfs:
// ENOSPC; the immutable attribute: EPERM), and checks at every restart:
// an acknowledged mutation is restored, a refused one is absent (a refused
// create) or undone (a refused remove leaves the workspace), and the entry
// that was not restored is still in the file. `make soak` runs many more
// generations.
func TestFaultInjectionDiskRefuses(t *testing.T) {
	gens := 3
	if os.Getenv("SHIPOTE_SOAK") != "" {
		gens = 60
	}
	for _, tc := range []struct {
		name  string
		brk   func(t *testing.T, dir string) (fix func())
		cause string
	}{
		{"ENOSPC", func(t *testing.T, dir string) func() {
			free, err := faultfs.Fill(dir)
			if err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := free(); err != nil {
					t.Fatal(err)
				}
			}
		}, "no space left"},
		{"EPERM", func(t *testing.T, dir string) func() {
			if err := faultfs.SetImmutable(dir, true); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := faultfs.SetImmutable(dir, false); err != nil {
					t.Fatal(err)
				}
			}
		}, "operation not permitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := faultfs.Tmpfs(t, 8<<20)
			if tc.name == "EPERM" {
				faultfs.Immutable(t, dir)() // skips where there is no such attribute
			}
			path := filepath.Join(dir, "state.json")
			doc := `{"version":4,"timestamp_ms":0,"workspaces":[` + keptFixture + `],"saved_pipelines":[],"live_pipelines":[]}`
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			diskRefusalRuns(t, path, dir, gens, tc.brk, tc.cause)
		})
	}
}

func diskRefusalRuns(t *testing.T, path, dir string, gens int, brk func(*testing.T, string) func(), cause string) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	want := map[string]string{}  // acknowledged: label -> ID ("" = removed)
	absent := map[string]bool{}  // refused creates
	present := map[string]bool{} // refused removes (until acknowledged later)
	uncertain := map[string]bool{}
	next, acks, nacks := 0, 0, 0
	var fix func()
	defer func() {
		if fix != nil {
			fix()
		}
	}()
	for gen := 0; gen <= gens; gen++ {
		if fix != nil {
			fix()
			fix = nil
		}
		if b, err := os.ReadFile(path); err != nil || !bytes.Contains(b, []byte(keptFixture)) {
			t.Fatalf("generation %d: the unrestorable entry is not in the file byte for byte (%v)", gen, err)
		}
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), "SHIPOTE_TEST_HELPER=faults", "SHIPOTE_TEST_STATE="+path)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		kill := func() {
			if !killed {
				killed = true
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
			}
		}
		t.Cleanup(kill)
		lines := make(chan string, 256)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		restored := waitRestored(t, gen, lines)
		for label, id := range want {
			switch {
			case uncertain[label]:
				want[label] = restored[label]
			case id == "" && restored[label] != "":
				t.Fatalf("generation %d: removed workspace %s came back", gen, label)
			case id != "" && restored[label] != id:
				t.Fatalf("generation %d: acknowledged workspace %s (%s) missing or changed: %q", gen, label, id, restored[label])
			}
		}
		for label := range absent {
			if restored[label] != "" {
				t.Fatalf("generation %d: workspace %s, whose create was refused, was restored", gen, label)
			}
		}
		for label := range present {
			if uncertain[label] {
				// A later remove was in flight when the engine was killed.
				if restored[label] == "" {
					delete(present, label)
				}
				continue
			}
			if restored[label] == "" {
				t.Fatalf("generation %d: workspace %s, whose remove was refused, is gone", gen, label)
			}
		}
		if gen == gens {
			kill()
			break
		}
		clear(uncertain)
		deadline := time.After(time.Duration(100+rng.Intn(400)) * time.Millisecond)
		inflight := 0
	mutate:
		for {
			if inflight < 3 {
				if rng.Intn(4) == 0 {
					if fix == nil {
						fix = brk(t, dir)
					} else {
						fix()
						fix = nil
					}
				}
				next++
				label := fmt.Sprintf("d%d", next)
				op := "create"
				if next%3 == 0 {
					for l, id := range want {
						if id != "" && !uncertain[l] {
							label, op = l, "remove"
							break
						}
					}
				}
				uncertain[label] = true
				fmt.Fprintf(stdin, "%s %s\n", op, label)
				inflight++
			}
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("generation %d: the engine exited", gen)
				}
				f := strings.Fields(l)
				switch {
				case len(f) == 4 && f[0] == "ack" && f[1] == "create":
					want[f[2]] = f[3]
					delete(uncertain, f[2])
					acks++
					inflight--
				case len(f) == 3 && f[0] == "ack" && f[1] == "remove":
					want[f[2]] = ""
					delete(present, f[2])
					delete(uncertain, f[2])
					acks++
					inflight--
				case len(f) > 2 && f[0] == "nack":
					label := f[1]
					if !strings.Contains(l, messages.ErrNotSaved.Error()) || !strings.Contains(l, cause) {
						t.Fatalf("generation %d: refusal without its cause: %s", gen, l)
					}
					if id, ok := want[label]; ok && id != "" {
						present[label] = true // a refused remove
					} else {
						absent[label] = true // a refused create
					}
					delete(uncertain, label)
					nacks++
					inflight--
				}
			case <-deadline:
				break mutate
			}
		}
		kill()
		for range lines {
		}
	}
	t.Logf("%d generations: %d acknowledged and %d refused mutations checked", gens, acks, nacks)
	if nacks == 0 && gens >= 20 {
		t.Error("no mutation was refused: the fault never bit")
	}
}

// waitRestored reads the fault child's start lines up to "restored".
func waitRestored(t *testing.T, gen int, lines <-chan string) map[string]string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("generation %d exited before restoring", gen)
			}
			if strings.HasPrefix(l, "error") {
				t.Fatalf("generation %d: %s", gen, l)
			}
			if r, ok := strings.CutPrefix(l, "restored"); ok {
				restored := map[string]string{}
				for _, kv := range strings.Split(strings.TrimSpace(r), ",") {
					if k, v, ok := strings.Cut(kv, "="); ok {
						restored[k] = v
					}
				}
				return restored
			}
		case <-timeout:
			t.Fatalf("generation %d: no restore line", gen)
		}
	}
}
