// sampler.go measures one sampling tick of internal/procstats (Scan of
// every process, then Tree over a workspace of sleepers) against reading
// the same /proc/<pid>/stat files with os.ReadFile in the same run, and
// prints prometheus/procfs's Proc+Stat beside the same baseline to show why
// the scan reads /proc itself.

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
	"github.com/shipote/shipote/internal/procstats"
)

// RunSampler starts 1,000 `sleep 3600` (quick: 200) and measures, as the
// median of 5 rounds (quick: 3): the wall time per process of one
// Scan+Tree, per process the scan read (it reads every process on the host,
// the sleepers included), against os.ReadFile of each sleeper's
// /proc/<pid>/stat parsed by the same parser; and the CPU one
// such tick costs, as a percentage of one core at a 1 s sampling interval.
// The sleepers are killed and reaped before it returns.
func RunSampler(ctx context.Context, r *Report, quick bool) error {
	n, rounds := 1000, 5
	if quick {
		n, rounds = 200, 3
	}
	if quick && smoke {
		n, rounds = 50, 1
	}
	pids, stop, err := startSleepers(ctx, n)
	if err != nil {
		return err
	}
	defer stop()
	reader, err := procstats.NewReader("")
	if err != nil {
		return err
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	// Warm-up round: page in the code paths and the dentries.
	if _, _, _, err := scanTreeOnce(reader, pids); err != nil {
		return err
	}
	if _, _, err := rawStatOnce(pids); err != nil {
		return err
	}

	var ours, raw, viaProcfs, oursCPU, rawCPU []float64
	scanned := 0
	for range rounds {
		if err := ctx.Err(); err != nil {
			return err
		}
		wall, cpu, m, err := scanTreeOnce(reader, pids)
		if err != nil {
			return err
		}
		scanned = m
		ours = append(ours, us(wall)/float64(m))
		oursCPU = append(oursCPU, pctOfCore(cpu))

		wall, cpu, err = rawStatOnce(pids)
		if err != nil {
			return err
		}
		raw = append(raw, us(wall)/float64(len(pids)))
		rawCPU = append(rawCPU, pctOfCore(cpu))

		wall, err = procfsStatOnce(fs, pids)
		if err != nil {
			return err
		}
		viaProcfs = append(viaProcfs, us(wall)/float64(len(pids)))
	}

	med, lo, hi := Median(ours)
	base, _, _ := Median(raw)
	r.Add(Row{
		Group: "sampler", Name: "Scan+Tree per process", Value: med, Min: lo, Max: hi, Unit: "us/proc",
		Baseline: "os.ReadFile /proc/PID/stat", Base: base,
		Target: "<= 1.5x", Met: Bool(med <= 1.5*base),
		Note: fmt.Sprintf("scan read %d processes, tree summed %d sleepers", scanned, n),
	})
	med, lo, hi = Median(viaProcfs)
	r.Add(Row{
		Group: "sampler", Name: "procfs Proc+Stat per process", Value: med, Min: lo, Max: hi, Unit: "us/proc",
		Baseline: "os.ReadFile /proc/PID/stat", Base: base,
		Note: "reference: why Scan reads /proc itself",
	})
	med, lo, hi = Median(oursCPU)
	base, _, _ = Median(rawCPU)
	r.Add(Row{
		Group: "sampler", Name: fmt.Sprintf("one tick CPU, %d sleepers, 1 s interval", n), Value: med, Min: lo, Max: hi,
		Unit: "% core", Baseline: "os.ReadFile of the sleepers", Base: base,
		Target: "< 5 %", Met: Bool(med < 5),
		Note: fmt.Sprintf("%d processes on the host", scanned),
	})
	return nil
}

// startSleepers starts n `sleep 3600` and returns their pids and a stop
// function that kills and reaps them all.
func startSleepers(ctx context.Context, n int) ([]int, func(), error) {
	cmds := make([]*exec.Cmd, 0, n)
	stop := func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
	}
	pids := make([]int, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			stop()
			return nil, nil, err
		}
		c := exec.Command("sleep", "3600")
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			stop()
			return nil, nil, fmt.Errorf("bench: start sleeper: %w", err)
		}
		cmds = append(cmds, c)
		pids = append(pids, c.Process.Pid)
	}
	return pids, stop, nil
}

// scanTreeOnce runs one tick: Scan, then Tree over pids. It returns the wall
// and CPU time and how many processes the scan read.
func scanTreeOnce(reader *procstats.Reader, pids []int) (wall, cpu time.Duration, scanned int, err error) {
	c0 := selfCPU()
	t0 := time.Now()
	tab, err := reader.Scan()
	if err != nil {
		return 0, 0, 0, err
	}
	st, _ := tab.Tree(pids, nil)
	wall, cpu = time.Since(t0), selfCPU()-c0
	if len(st.Pids) != len(pids) {
		return 0, 0, 0, fmt.Errorf("bench: tree found %d of %d sleepers", len(st.Pids), len(pids))
	}
	return wall, cpu, tab.Len(), nil
}

// rawStatOnce reads every pid's stat file with os.ReadFile and parses it
// with the parser the scan uses (internal/pidstat), so that the two differ
// only in how they read /proc.
func rawStatOnce(pids []int) (wall, cpu time.Duration, err error) {
	c0 := selfCPU()
	t0 := time.Now()
	var sum uint64
	for _, pid := range pids {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, 0, fmt.Errorf("bench: %w", err)
		}
		st, err := pidstat.Parse(data)
		if err != nil {
			return 0, 0, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
		}
		sum += st.UTime + st.STime + uint64(st.RSS)
	}
	_ = sum
	return time.Since(t0), selfCPU() - c0, nil
}

// procfsStatOnce reads every pid through prometheus/procfs.
func procfsStatOnce(fs procfs.FS, pids []int) (time.Duration, error) {
	t0 := time.Now()
	for _, pid := range pids {
		p, err := fs.Proc(pid)
		if err != nil {
			return 0, fmt.Errorf("bench: %w", err)
		}
		if _, err := p.Stat(); err != nil {
			return 0, fmt.Errorf("bench: %w", err)
		}
	}
	return time.Since(t0), nil
}

// selfCPU is the process's CPU time so far (user + system, all threads).
func selfCPU() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// pctOfCore is cpu as a percentage of one core over a 1 s interval.
func pctOfCore(cpu time.Duration) float64 { return 100 * cpu.Seconds() }
