// splitter.go measures the pipeline splitter: fan-out throughput of
// internal/flow against coreutils tee (on default 64 KiB pipes, and on
// 1 MiB pipes as the splitter grows its own) and a bare tee(2)+splice(2)
// loop, and
// the throttled splitter actor's rate accuracy against pv -L, all with real
// processes in the same run.

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/internal/flow"
)

// splitPipeBytes is the pipe size the splitter and the bare loop run with.
const splitPipeBytes = 1 << 20

// RunSplitter measures the splitter. Fan-out: 1 GiB of zeros (quick: 256 MiB)
// from head(1) to N = 1, 2, 4, 8 `cat >/dev/null` consumers, aggregate GB/s
// (N × bytes ÷ wall time, spawn to last exit), median of 5 runs (quick: 1),
// against coreutils tee in the same run, on default pipes and on pipes grown
// to 1 MiB like the splitter's, plus a bare tee(2)+splice(2) loop and the
// copying engine at 1→4. Throttle: the splitter actor at 1, 10 and
// 100 MB/s for 10 s (quick: 3 s), error and densest 100 ms window measured at
// the reader, against pv -L at the same rates, median of 5 runs (quick: 1).
func RunSplitter(ctx context.Context, r *Report, quick bool) error {
	size, runs, dur := int64(1<<30), 5, 10*time.Second
	if quick {
		size, runs, dur = 256<<20, 1, 3*time.Second
	}
	if quick && smoke {
		size, dur = 32<<20, time.Second
	}
	if err := splitFanout(ctx, r, size, runs); err != nil {
		return err
	}
	return splitThrottle(ctx, r, dur, runs)
}

type splitKind int

const (
	splitFlow     splitKind = iota // internal/flow, zero-copy engine
	splitFlowCopy                  // internal/flow, copying engine
	splitTee                       // coreutils tee, default (64 KiB) pipes
	splitTeeBig                    // coreutils tee, pipes grown to splitPipeBytes
	splitBare                      // bare tee(2)+splice(2) loop
)

func splitFanout(ctx context.Context, r *Report, size int64, runs int) error {
	// Warm up (page cache of the binaries, pipe allocations).
	for _, k := range []splitKind{splitFlow, splitTee} {
		if _, err := splitFanoutOnce(ctx, k, 2, size/16); err != nil {
			return err
		}
	}
	for _, n := range []int{1, 2, 4, 8} {
		kinds := []splitKind{splitFlow, splitTee, splitTeeBig}
		if n == 4 {
			kinds = append(kinds, splitBare, splitFlowCopy)
		}
		res := map[splitKind][]float64{}
		for i := range runs {
			for j := range kinds {
				k := kinds[(i+j)%len(kinds)] // rotate who goes first
				secs, err := splitFanoutOnce(ctx, k, n, size)
				if err != nil {
					return err
				}
				res[k] = append(res[k], float64(n)*float64(size)/secs/1e9)
			}
		}
		med, lo, hi := Median(res[splitFlow])
		tee, _, _ := Median(res[splitTee])
		note := fmt.Sprintf("%d MiB of zeros, cat consumers, median of %d", size>>20, runs)
		row := Row{Group: "splitter", Name: fmt.Sprintf("1->%d aggregate", n), Value: med, Unit: "GB/s",
			Baseline: "coreutils tee", Base: tee, HigherIsBetter: true, Note: note}
		if runs > 1 {
			row.Min, row.Max = lo, hi
		}
		if n == 4 {
			row.Target, row.Met = ">= 2x", Bool(med >= 2*tee)
		}
		r.Add(row)
		teeBig, _, _ := Median(res[splitTeeBig])
		r.Add(Row{Group: "splitter", Name: fmt.Sprintf("1->%d aggregate", n), Value: med, Min: row.Min, Max: row.Max, Unit: "GB/s",
			Baseline: "coreutils tee, 1 MiB pipes", Base: teeBig, HigherIsBetter: true,
			Note: note + "; every pipe tee touches grown to 1 MiB (F_SETPIPE_SZ), as the splitter grows its own"})
		if n == 4 {
			bare, _, _ := Median(res[splitBare])
			r.Add(Row{Group: "splitter", Name: "1->4 aggregate", Value: med, Min: row.Min, Max: row.Max, Unit: "GB/s",
				Baseline: "bare tee(2)+splice loop", Base: bare, HigherIsBetter: true,
				Target: ">= 0.7x", Met: Bool(med >= 0.7*bare), Note: note})
			cp, clo, chi := Median(res[splitFlowCopy])
			crow := Row{Group: "splitter", Name: "1->4 aggregate, copying engine", Value: cp, Unit: "GB/s",
				Baseline: "coreutils tee", Base: tee, HigherIsBetter: true,
				Note: "Config.Copy (used for drop-free non-pipe consumers); " + note}
			if runs > 1 {
				crow.Min, crow.Max = clo, chi
			}
			r.Add(crow)
		}
	}
	return nil
}

// splitFanoutOnce runs one fan-out of size bytes to n consumers and returns
// the wall time in seconds.
func splitFanoutOnce(ctx context.Context, kind splitKind, n int, size int64) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer devNull.Close()
	blocking := kind == splitBare
	// grow gives coreutils tee the pipe size the splitter runs with.
	grow := func(f *os.File) error {
		if kind != splitTeeBig {
			return nil
		}
		return growPipe(f, splitPipeBytes)
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			if c.ProcessState == nil && c.Process != nil {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
	}()
	begin := time.Now()
	// Consumers.
	ws := make([]*os.File, n)
	for i := range n {
		cr, cw, err := splitPipe(blocking)
		if err != nil {
			return 0, err
		}
		if err := grow(cw); err != nil {
			cr.Close()
			cw.Close()
			return 0, err
		}
		c := exec.Command("cat")
		c.Stdin, c.Stdout = cr, devNull
		if err := c.Start(); err != nil {
			cr.Close()
			cw.Close()
			return 0, err
		}
		cmds = append(cmds, c)
		cr.Close()
		ws[i] = cw
	}
	// Producer.
	pr, pw, err := splitPipe(blocking)
	if err != nil {
		return 0, err
	}
	if err := grow(pw); err != nil {
		pr.Close()
		pw.Close()
		return 0, err
	}
	prod := exec.Command("head", "-c", strconv.FormatInt(size, 10), "/dev/zero")
	prod.Stdout = pw
	if err := prod.Start(); err != nil {
		return 0, err
	}
	cmds = append(cmds, prod)
	pw.Close()

	var runErr error
	switch kind {
	case splitFlow, splitFlowCopy:
		cons := make([]flow.Consumer, n)
		for i, w := range ws {
			cons[i] = flow.Consumer{Name: fmt.Sprint("c", i), W: w}
		}
		s, err := flow.Start(pr, cons, flow.Config{Copy: kind == splitFlowCopy}, nil)
		if err != nil {
			return 0, err
		}
		<-s.Done()
		s.Close()
		if got := s.Counters().BytesIn; got != uint64(size) {
			runErr = fmt.Errorf("splitter moved %d bytes, want %d", got, size)
		}
	case splitTee, splitTeeBig:
		args := make([]string, 0, n-1)
		for i := range n - 1 {
			args = append(args, fmt.Sprintf("/dev/fd/%d", 3+i))
		}
		tee := exec.Command("tee", args...)
		tee.Stdin, tee.Stdout, tee.ExtraFiles = pr, ws[n-1], ws[:n-1]
		if err := tee.Start(); err != nil {
			return 0, err
		}
		cmds = append(cmds, tee)
		pr.Close()
		for _, w := range ws {
			w.Close()
		}
		runErr = tee.Wait()
	case splitBare:
		runErr = splitBareLoop(pr, ws)
		pr.Close()
		for _, w := range ws {
			w.Close()
		}
	}
	for _, c := range cmds {
		if c.ProcessState != nil {
			continue
		}
		if err := c.Wait(); err != nil && runErr == nil {
			runErr = fmt.Errorf("%s: %w", c.Args[0], err)
		}
	}
	return time.Since(begin).Seconds(), runErr
}

// growPipe sets the capacity of pipe f to size bytes and checks the kernel
// gave at least that much.
func growPipe(f *os.File, size int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var got int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if _, serr = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size); serr == nil {
			got, serr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0)
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("grow pipe to %d bytes: %w", size, serr)
	}
	if got < size {
		return fmt.Errorf("grow pipe to %d bytes: the kernel gave %d", size, got)
	}
	return nil
}

// splitPipe returns a pipe sized like the splitter's; blocking pipes are for
// the bare loop, which uses plain blocking syscalls.
func splitPipe(blocking bool) (*os.File, *os.File, error) {
	if !blocking {
		return os.Pipe()
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	_, _ = unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, splitPipeBytes)
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// splitBareLoop is the zero-copy baseline: blocking tee(2) to every consumer
// but the last, splice(2) to the last, a scratch pipe when a tee is partial.
func splitBareLoop(src *os.File, dsts []*os.File) error {
	in := int(src.Fd())
	out := make([]int, len(dsts))
	for i, d := range dsts {
		out[i] = int(d.Fd())
		_, _ = unix.FcntlInt(uintptr(out[i]), unix.F_SETPIPE_SZ, splitPipeBytes)
	}
	var sp [2]int
	if err := unix.Pipe2(sp[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	_, _ = unix.FcntlInt(uintptr(sp[0]), unix.F_SETPIPE_SZ, splitPipeBytes)
	null, err := unix.Open(os.DevNull, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(null)
	spliceAll := func(from, to, n int) error {
		for n > 0 {
			k, err := unix.Splice(from, nil, to, nil, n, unix.SPLICE_F_MOVE)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return err
			}
			if k == 0 {
				return io.ErrUnexpectedEOF
			}
			n -= int(k)
		}
		return nil
	}
	last := out[len(out)-1]
	for {
		var n int
		if len(out) == 1 {
			k, err := unix.Splice(in, nil, last, nil, splitPipeBytes, unix.SPLICE_F_MOVE)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || k == 0 {
				return err
			}
			continue
		}
		k, err := unix.Tee(in, out[0], splitPipeBytes, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || k == 0 {
			return err
		}
		n = int(k)
		for _, o := range out[1 : len(out)-1] {
			k, err := unix.Tee(in, o, n, 0)
			for errors.Is(err, unix.EINTR) {
				k, err = unix.Tee(in, o, n, 0)
			}
			if err != nil {
				return err
			}
			if int(k) < n { // partial: copy the chunk aside, skip what went
				m, err := unix.Tee(in, sp[1], n, 0)
				if err != nil || int(m) != n {
					return fmt.Errorf("scratch tee %d of %d: %v", m, n, err)
				}
				if err := spliceAll(sp[0], null, int(k)); err != nil {
					return err
				}
				if err := spliceAll(sp[0], o, n-int(k)); err != nil {
					return err
				}
			}
		}
		if err := spliceAll(in, last, n); err != nil {
			return err
		}
	}
}

// splitThrottle measures the throttled splitter actor against pv -L. Each
// run streams all three rates through both at once, for dur from the first
// byte at the reader: six paced streams cost little CPU, and every stream
// sees the same machine as its baseline.
func splitThrottle(ctx context.Context, r *Report, dur time.Duration, runs int) error {
	pv, pvErr := exec.LookPath("pv")
	rates := []int64{1_000_000, 10_000_000, 100_000_000}
	got := make([][]splitRate, len(rates))
	base := make([][]splitRate, len(rates))
	var loads []string
	for range runs {
		var wg sync.WaitGroup
		errs := make([]error, 2*len(rates))
		ours := make([]splitRate, len(rates))
		theirs := make([]splitRate, len(rates))
		for i, rate := range rates {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ours[i], errs[2*i] = splitThrottledActor(ctx, rate, dur)
			}()
			if pvErr == nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					theirs[i], errs[2*i+1] = splitThrottledPV(ctx, pv, rate, dur)
				}()
			}
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		for i := range rates {
			got[i], base[i] = append(got[i], ours[i]), append(base[i], theirs[i])
		}
		if la := splitLoadAvg(); la != "" {
			loads = append(loads, la)
		}
	}
	for i, rate := range rates {
		note := fmt.Sprintf("%v from the first byte at the reader; the 3 rates through shipote and pv at once; median of %d runs", dur, runs)
		if pvErr != nil {
			note += "; pv not installed (apt-get install pv), no baseline"
		}
		if len(loads) > 0 {
			note += "; load average " + loads[len(loads)-1]
		}
		name := fmt.Sprintf("throttle %d MB/s", rate/1_000_000)
		errOf := func(x splitRate) float64 { return (x.avg/float64(rate) - 1) * 100 }
		winOf := func(x splitRate) float64 { return x.maxWin / float64(rate) * 10 }
		col := func(xs []splitRate, f func(splitRate) float64) []float64 {
			out := make([]float64, len(xs))
			for k, x := range xs {
				out[k] = f(x)
			}
			return out
		}
		abs := func(f func(splitRate) float64) func(splitRate) float64 {
			return func(x splitRate) float64 { return splitAbs(f(x)) }
		}
		signed, _, _ := Median(col(got[i], errOf))
		errRow := Row{Group: "splitter", Name: name + " error", Unit: "%", Baseline: "pv -L",
			Target: "<= 0.5% every run", Note: fmt.Sprintf("median signed %+.3f%%; %s", signed, note)}
		errRow.Value, errRow.Min, errRow.Max = Median(col(got[i], abs(errOf)))
		errRow.Met = Bool(errRow.Max <= 0.5) // every run within the target
		winRow := Row{Group: "splitter", Name: name + " max 100ms window", Unit: "x target", Baseline: "pv -L",
			Target: "<= 1.1x every run", Note: note}
		winRow.Value, winRow.Min, winRow.Max = Median(col(got[i], winOf))
		winRow.Met = Bool(winRow.Max <= 1.1)
		if pvErr == nil {
			errRow.Base, _, _ = Median(col(base[i], abs(errOf)))
			winRow.Base, _, _ = Median(col(base[i], winOf))
		}
		if runs == 1 {
			errRow.Min, errRow.Max, winRow.Min, winRow.Max = 0, 0, 0, 0
		}
		r.Add(errRow)
		r.Add(winRow)
	}
	return nil
}

// splitRate is what a rate reader saw: the mean bytes/s over the measured
// duration and the most bytes in any 100 ms window starting at a read.
type splitRate struct {
	avg, maxWin float64
}

// splitMeasure reads r until dur has passed since the first byte.
func splitMeasure(r io.Reader, dur time.Duration) (splitRate, error) {
	type read struct {
		at time.Time
		n  int
	}
	buf := make([]byte, 1<<20)
	var reads []read
	var first time.Time
	for {
		n, err := r.Read(buf)
		now := time.Now()
		if n > 0 {
			if first.IsZero() {
				first = now
			}
			if now.Sub(first) >= dur {
				break
			}
			reads = append(reads, read{now, n})
		}
		if err != nil {
			return splitRate{}, fmt.Errorf("rate reader: %w (after %d reads)", err, len(reads))
		}
	}
	var total, win, maxWin int
	j := 0
	for i := range reads {
		total += reads[i].n
		for j < len(reads) && reads[j].at.Sub(reads[i].at) < 100*time.Millisecond {
			win += reads[j].n
			j++
		}
		maxWin = max(maxWin, win)
		win -= reads[i].n
	}
	return splitRate{avg: float64(total) / dur.Seconds(), maxWin: float64(maxWin)}, nil
}

// splitThrottledActor runs `cat /dev/zero` through a splitter actor throttled
// at rate to a reader in this process.
func splitThrottledActor(ctx context.Context, rate int64, dur time.Duration) (splitRate, error) {
	if err := ctx.Err(); err != nil {
		return splitRate{}, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return splitRate{}, err
	}
	cr, cw, err := os.Pipe()
	if err != nil {
		return splitRate{}, err
	}
	defer cr.Close()
	prod := exec.Command("cat", "/dev/zero")
	prod.Stdout = pw
	if err := prod.Start(); err != nil {
		return splitRate{}, err
	}
	pw.Close()
	defer func() {
		_ = prod.Process.Kill()
		_ = prod.Wait()
	}()

	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	stopped := make(chan struct{})
	cfg := actors.SplitterConfig{Pipeline: "bench", Node: "gen", Source: pr,
		Consumers: []flow.Consumer{{Name: "reader", W: cw}}, MaxBytesPerSec: rate}
	parent := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			c.Spawn(actors.NewSplitterProps(cfg))
		case *actor.Stopped:
			close(stopped)
		}
	}))
	res, err := splitMeasure(cr, dur)
	sys.Root.Stop(parent)
	<-stopped
	sys.Shutdown()
	return res, err
}

// splitThrottledPV runs `pv -q -L rate /dev/zero` to a reader in this process.
func splitThrottledPV(ctx context.Context, pv string, rate int64, dur time.Duration) (splitRate, error) {
	cmd := exec.CommandContext(ctx, pv, "-q", "-L", strconv.FormatInt(rate, 10), "/dev/zero")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return splitRate{}, err
	}
	if err := cmd.Start(); err != nil {
		return splitRate{}, err
	}
	res, err := splitMeasure(out, dur)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return res, err
}

// splitLoadAvg returns the 1-minute load average, which explains a noisy
// throttle row (timer wake-ups stall under load).
func splitLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func splitAbs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
