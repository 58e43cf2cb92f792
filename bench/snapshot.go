// This file benchmarks state snapshots (SPEC §2): encoding and durably saving
// a State of 1,000 and 10,000 workspaces, and loading one, each beside plain
// encoding/json doing the same work in the same run.

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

// SnapshotState returns a realistic State of n workspaces, each with a full
// spec and samples stats samples, plus n/100 saved and n/100 live pipelines.
func SnapshotState(n, samples int) *persistence.State {
	base := time.Date(2024, 10, 15, 12, 0, 0, 0, time.UTC)
	uid, gid := int64(1000), int64(1000)
	st := &persistence.State{
		Version:     persistence.CurrentVersion,
		TimestampMs: base.Add(time.Hour).UnixMilli(),
		Workspaces:  make([]persistence.WorkspaceEntry, n),
	}
	for i := range st.Workspaces {
		label := fmt.Sprintf("ws-%05d", i)
		hist := make([]messages.Sample, samples)
		for j := range hist {
			hist[j] = messages.Sample{
				TimestampMs:   base.Add(time.Duration(3600-samples+j) * time.Second).UnixMilli(),
				CommandsAlive: 3, CommandsTotal: 4 + i%7,
				RSSBytes: 96<<20 + uint64(i*j%977)*4096, RSSPeakBytes: 128<<20 + uint64(i%13)*4096,
				CPUUsec: uint64(1_250_000 + i*31 + j*310_000), CPUPercent: 12.5 + float64((i+j)%400)/7,
				CPUCores: 1.5, UptimeMs: int64(3_600_000 + j*1000), Source: "cgroup1",
			}
		}
		st.Workspaces[i] = persistence.WorkspaceEntry{
			ID: messages.NewIDAt(base.Add(time.Duration(i) * time.Millisecond)),
			Spec: messages.WorkspaceSpec{
				Label: label,
				Soma:  messages.Soma{MemoryMaxBytes: 512 << 20, CPUMax: 1.5, PidsMax: 64, NofileMax: 1024},
				Permissions: messages.Permissions{
					AllowExec: []string{"/usr/bin/", "/bin/sh"},
					Workdir:   "/srv/" + label,
					Env:       map[string]string{"LANG": "C.UTF-8", "PATH": messages.DefaultPath, "WS": label},
					UID:       &uid, GID: &gid,
				},
				TTLMs:        600000,
				FlowDirs:     []string{"/run/user/1000/" + label + "-flows"},
				OnExit:       messages.ExitKeep,
				QuotaEnforce: messages.QuotaWarn,
			},
			StatsHistory: hist,
		}
	}
	native := func(exec string, argv ...string) messages.Payload {
		return messages.Payload{Native: &messages.NativePayload{Exec: exec, Argv: argv}}
	}
	for i := 0; i < n/100; i++ {
		spec := messages.PipelineSpec{
			Label: fmt.Sprintf("fanout-%03d", i),
			Nodes: []messages.Node{
				{Label: "gen", Payload: native("/usr/bin/seq", "1", "1000000")},
				{Label: "count", Payload: native("/usr/bin/wc", "-l")},
				{Label: "hash", Payload: native("/usr/bin/sha256sum")},
			},
			Edges:            []messages.Edge{{From: "gen", To: "count"}, {From: "gen", To: "hash"}},
			Discern:          messages.DiscernPolicy{MaxBytesPerSec: 10 << 20, SlowConsumer: messages.SlowBlock},
			RestartOnFailure: true, RestartBackoffMs: 200, RestartMaxBackoffMs: 30000,
		}
		st.SavedPipelines = append(st.SavedPipelines, persistence.SavedPipeline{Name: spec.Label, Spec: spec})
		spec.Workspace = st.Workspaces[i].ID
		st.LivePipelines = append(st.LivePipelines, persistence.LivePipeline{
			ID: messages.NewIDAt(base.Add(time.Minute)), Workspace: st.Workspaces[i].ID, Spec: spec, Tap: i%2 == 0,
		})
	}
	return st
}

// PlainSave is the baseline of a snapshot save: encoding/json Marshal, then
// write the file in place and fsync it (no temp file, no rename, no
// directory fsync). It returns the bytes written.
func PlainSave(path string, st *persistence.State) (int, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	return len(data), f.Close()
}

// timeIt runs f after a GC, so that garbage of the previous run is not
// charged to it, and returns its duration in ms.
func timeIt(f func() error) (float64, error) {
	runtime.GC()
	start := time.Now()
	err := f()
	return float64(time.Since(start).Microseconds()) / 1000, err
}

// fsType names the filesystem of dir, for the report.
func fsType(dir string) string {
	var s unix.Statfs_t
	if unix.Statfs(dir, &s) != nil {
		return "?"
	}
	switch s.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.TMPFS_MAGIC:
		return "tmpfs (fsync is free)"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("fs 0x%x", s.Type)
}

// RunSnapshot measures, for 1,000 and 10,000 workspaces with 16 samples each:
// persistence.Encode + Store.Save (temp file, fsync, rename, directory fsync)
// against encoding/json Marshal + write + fsync of the same state (target <=
// 2x); Encode alone against json.Marshal; and at 10,000, Decode against
// json.Unmarshal of the same bytes, on both the strict one-pass path and the
// per-entry path taken when one entry is bad. Each figure is the median of 5
// rounds, baseline and shipote alternating. quick measures 1,000 workspaces
// only, in 3 rounds.
func RunSnapshot(ctx context.Context, r *Report, quick bool) error {
	rounds, sizes := 5, []int{1000, 10000}
	if quick {
		rounds, sizes = 3, []int{1000}
	}
	if quick && smoke {
		rounds, sizes = 1, []int{100}
	}
	dir, err := os.MkdirTemp("", "shipote-bench-snapshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := persistence.Open(filepath.Join(dir, "state.json"))
	if err != nil {
		return err
	}
	defer store.Close()
	plainPath := filepath.Join(dir, "plain.json")
	fs := fsType(dir)

	var data []byte // the largest state, encoded
	last := sizes[len(sizes)-1]
	for _, n := range sizes {
		st := SnapshotState(n, 16)
		var save, plain, enc, marshal []float64
		size := 0
		for i := 0; i < rounds; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			ours := func() error { var err error; size, err = store.Save(st); return err }
			base := func() error { _, err := PlainSave(plainPath, st); return err }
			first, second := &save, &plain
			f1, f2 := ours, base
			if i%2 == 1 {
				first, second, f1, f2 = &plain, &save, base, ours
			}
			ms, err := timeIt(f1)
			if err != nil {
				return err
			}
			*first = append(*first, ms)
			if ms, err = timeIt(f2); err != nil {
				return err
			}
			*second = append(*second, ms)

			ms, err = timeIt(func() error { _, err := persistence.Encode(st); return err })
			if err != nil {
				return err
			}
			enc = append(enc, ms)
			if ms, err = timeIt(func() error { _, err := json.Marshal(st); return err }); err != nil {
				return err
			}
			marshal = append(marshal, ms)
		}
		med, lo, hi := Median(save)
		bmed, _, _ := Median(plain)
		r.Add(Row{Group: "snapshot", Name: fmt.Sprintf("save %dk ws x16 (Encode+Save)", n/1000),
			Value: med, Min: lo, Max: hi, Unit: "ms", Baseline: "json.Marshal+write+fsync", Base: bmed,
			Target: "<= 2x", Met: Bool(med <= 2*bmed),
			Note: fmt.Sprintf("%.2f MB, median of %d, %s", float64(size)/1e6, rounds, fs)})
		med, lo, hi = Median(enc)
		bmed, _, _ = Median(marshal)
		r.Add(Row{Group: "snapshot", Name: fmt.Sprintf("encode %dk ws x16 (Encode)", n/1000),
			Value: med, Min: lo, Max: hi, Unit: "ms", Baseline: "encoding/json Marshal", Base: bmed,
			Note: "goccy/go-json, same bytes as encoding/json; no target (part of the save)"})
		if n == last {
			if data, err = persistence.Encode(st); err != nil {
				return err
			}
		}
	}

	// Load of the largest state: Decode against json.Unmarshal of the same
	// bytes. One field of the wrong type in the last workspace's spec
	// forces the per-entry path.
	bad := append([]byte(nil), data...)
	needle := []byte(fmt.Sprintf(`"label":"ws-%05d"`, last-1))
	at := bytes.LastIndex(bad, needle)
	if at < 0 {
		return fmt.Errorf("bench: snapshot: label of the last workspace not found")
	}
	bad = append(bad[:at:at], append([]byte(`"log_max_files":"bogus",`), bad[at:]...)...)
	for _, c := range []struct {
		name string
		data []byte
		want int // problems expected
		note string
	}{
		{fmt.Sprintf("load %dk ws x16 (Decode)", last/1000), data, 0, "strict one-pass decode"},
		{fmt.Sprintf("load %dk, 1 bad entry (Decode)", last/1000), bad, 1, "per-entry decode, the bad entry kept"},
	} {
		var dec, unm []float64
		for i := 0; i < rounds; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			ms, err := timeIt(func() error {
				_, problems, err := persistence.Decode(c.data)
				if err == nil && len(problems) != c.want {
					err = fmt.Errorf("bench: snapshot: %d problems, want %d: %v", len(problems), c.want, problems)
				}
				return err
			})
			if err != nil {
				return err
			}
			dec = append(dec, ms)
			ms, err = timeIt(func() error { var s persistence.State; return json.Unmarshal(data, &s) })
			if err != nil {
				return err
			}
			unm = append(unm, ms)
		}
		med, lo, hi := Median(dec)
		bmed, _, _ := Median(unm)
		row := Row{Group: "snapshot", Name: c.name, Value: med, Min: lo, Max: hi, Unit: "ms",
			Baseline: "json.Unmarshal", Base: bmed, Note: c.note}
		if c.want == 0 {
			row.Target, row.Met = "<= 1.5x", Bool(med <= 1.5*bmed)
		}
		r.Add(row)
	}
	return nil
}
