// Tests of the data plane with real processes and real pipes.
package flow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if dataDir != "" {
			os.RemoveAll(dataDir)
		}
		os.Exit(code)
	}))
}

var (
	dataOnce sync.Once
	dataDir  string
	dataErr  error
	dataPath string
	dataHash string
)

const bigSize = 256 << 20

// bigFile returns a 256 MiB file of seeded random bytes and its sha256.
func bigFile(t testing.TB) (string, string) {
	t.Helper()
	dataOnce.Do(func() {
		dataDir, dataErr = os.MkdirTemp("", "flowtest-")
		if dataErr != nil {
			return
		}
		dataPath = filepath.Join(dataDir, "random.bin")
		dataHash, dataErr = writeRandom(dataPath, bigSize, 42)
	})
	if dataErr != nil {
		t.Fatal(dataErr)
	}
	return dataPath, dataHash
}

func writeRandom(path string, size int, seed uint64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var key [32]byte
	key[0] = byte(seed)
	rng := rand.NewChaCha8(key)
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rng, int64(size))); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// proc is a started process with its stdout captured.
type proc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	wait chan error
}

func (p *proc) Wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-p.wait:
		p.wait <- err
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("%v did not exit", p.cmd.Args)
		return nil
	}
}

func start(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, wait: make(chan error, 1)}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.out
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.wait <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.wait
	})
	return p
}

// producer starts argv with its stdout on a new pipe and returns the read end.
func producer(t testing.TB, argv ...string) (*proc, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = w
	p := start(t, cmd)
	w.Close()
	return p, r
}

// consumer starts argv with its stdin on a new pipe and returns the write end.
func consumer(t testing.TB, name string, argv ...string) (*proc, Consumer) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = r
	p := start(t, cmd)
	r.Close()
	return p, Consumer{Name: name, W: w}
}

// events records a splitter's events.
type events struct {
	mu   sync.Mutex
	list []Event
	done chan Event
}

func newEvents() *events { return &events{done: make(chan Event, 1)} }

func (e *events) notify(ev Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
	if ev.Kind == EventDone {
		e.done <- ev
	}
}

func (e *events) kinds() []EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ks []EventKind
	for _, ev := range e.list {
		ks = append(ks, ev.Kind)
	}
	return ks
}

func (e *events) has(k EventKind) bool {
	for _, x := range e.kinds() {
		if x == k {
			return true
		}
	}
	return false
}

func (e *events) waitDone(t testing.TB) Event {
	t.Helper()
	select {
	case ev := <-e.done:
		return ev
	case <-time.After(120 * time.Second):
		t.Fatal("splitter did not finish")
		return Event{}
	}
}

func shaOut(p *proc) string { return strings.Fields(p.out.String() + " ")[0] }

var engines = []struct {
	name string
	copy bool
}{{"zerocopy", false}, {"copy", true}}

func TestFanOutByteIdentical(t *testing.T) {
	path, want := bigFile(t)
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			_, src := producer(t, "cat", path)
			var procs []*proc
			var cons []Consumer
			for i := range 3 {
				p, c := consumer(t, fmt.Sprintf("hash%d", i), "sha256sum")
				procs = append(procs, p)
				cons = append(cons, c)
			}
			ev := newEvents()
			s, err := Start(src, cons, Config{Copy: eng.copy}, ev.notify)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.ZeroCopy() == eng.copy {
				t.Fatalf("ZeroCopy() = %v with Copy = %v", s.ZeroCopy(), eng.copy)
			}
			if d := ev.waitDone(t); d.Err != nil {
				t.Fatal(d.Err)
			}
			for i, p := range procs {
				if err := p.Wait(t); err != nil {
					t.Fatal(err)
				}
				if got := shaOut(p); got != want {
					t.Errorf("consumer %d: sha256 %s, want %s", i, got, want)
				}
			}
			c := s.Counters()
			if c.BytesIn != bigSize {
				t.Errorf("BytesIn = %d, want %d", c.BytesIn, bigSize)
			}
			for _, cc := range c.Consumers {
				if cc.BytesTotal != bigSize || cc.DroppedBytes != 0 {
					t.Errorf("%s: total %d dropped %d, want %d and 0", cc.Name, cc.BytesTotal, cc.DroppedBytes, bigSize)
				}
			}
			if !ev.has(EventSourceEOF) {
				t.Errorf("events %v: no source-eof", ev.kinds())
			}
		})
	}
}

func TestEarlyExitConsumerDoesNotDisturbOthers(t *testing.T) {
	path, want := bigFile(t)
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			_, src := producer(t, "head", "-c", strconv.Itoa(64<<20), path)
			want64 := sha256Prefix(t, path, 64<<20)
			_ = want
			h1, c1 := consumer(t, "h1", "sha256sum")
			head, c2 := consumer(t, "head", "head", "-c", "1")
			h2, c3 := consumer(t, "h2", "sha256sum")
			ev := newEvents()
			s, err := Start(src, []Consumer{c1, c2, c3}, Config{Copy: eng.copy}, ev.notify)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if d := ev.waitDone(t); d.Err != nil {
				t.Fatal(d.Err)
			}
			for _, p := range []*proc{h1, h2} {
				if err := p.Wait(t); err != nil {
					t.Fatal(err)
				}
				if got := shaOut(p); got != want64 {
					t.Errorf("sha256 %s, want %s", got, want64)
				}
			}
			if err := head.Wait(t); err != nil {
				t.Fatal(err)
			}
			if head.out.Len() != 1 {
				t.Errorf("head got %d bytes", head.out.Len())
			}
			var gone *Event
			ev.mu.Lock()
			for i := range ev.list {
				if ev.list[i].Kind == EventConsumerGone {
					gone = &ev.list[i]
				}
			}
			ev.mu.Unlock()
			if gone == nil || gone.Consumer != "head" || !errors.Is(gone.Err, syscall.EPIPE) {
				t.Errorf("consumer-gone event = %+v, want head with EPIPE", gone)
			}
			if c := s.Counters(); !c.Consumers[1].Gone || c.Consumers[0].Gone {
				t.Errorf("Gone flags: %+v", c.Consumers)
			}
		})
	}
}

func sha256Prefix(t testing.TB, path string, n int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, n); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestDropStalledConsumerKeepsFastOneGoing(t *testing.T) {
	path, _ := bigFile(t)
	const size = 64 << 20
	want := sha256Prefix(t, path, size)
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			_, src := producer(t, "head", "-c", strconv.Itoa(size), path)
			stalled, c1 := consumer(t, "stalled", "sleep", "1000")
			fast, c2 := consumer(t, "fast", "sha256sum")
			ev := newEvents()
			s, err := Start(src, []Consumer{c1, c2}, Config{Policy: Drop, Copy: eng.copy, BufferBytes: 64 << 10}, ev.notify)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if d := ev.waitDone(t); d.Err != nil {
				t.Fatal(d.Err)
			}
			if err := fast.Wait(t); err != nil {
				t.Fatal(err)
			}
			if got := shaOut(fast); got != want {
				t.Errorf("fast consumer: sha256 %s, want %s", got, want)
			}
			c := s.Counters()
			st, fa := c.Consumers[0], c.Consumers[1]
			if st.DroppedBytes == 0 || st.BytesTotal+st.DroppedBytes != size {
				t.Errorf("stalled: total %d + dropped %d, want dropped > 0 and sum %d", st.BytesTotal, st.DroppedBytes, size)
			}
			if fa.BytesTotal != size || fa.DroppedBytes != 0 {
				t.Errorf("fast: total %d dropped %d", fa.BytesTotal, fa.DroppedBytes)
			}
			_ = stalled.cmd.Process.Kill()
		})
	}
}

func TestProducerEOFClosesConsumers(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			_, src := producer(t, "seq", "1", "100000")
			var procs []*proc
			var cons []Consumer
			for i := range 3 {
				p, c := consumer(t, fmt.Sprint("wc", i), "wc", "-l")
				procs = append(procs, p)
				cons = append(cons, c)
			}
			ev := newEvents()
			s, err := Start(src, cons, Config{Copy: eng.copy}, ev.notify)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, p := range procs {
				if err := p.Wait(t); err != nil {
					t.Fatal(err)
				}
				if got := strings.TrimSpace(p.out.String()); got != "100000" {
					t.Errorf("wc -l = %q", got)
				}
			}
			ev.waitDone(t)
			if ks := ev.kinds(); len(ks) != 2 || ks[0] != EventSourceEOF || ks[1] != EventDone {
				t.Errorf("events %v, want [source-eof done]", ks)
			}
		})
	}
}

func TestAllConsumersGoneSIGPIPEsProducer(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			prod, src := producer(t, "yes")
			_, c1 := consumer(t, "a", "head", "-c", "10")
			_, c2 := consumer(t, "b", "head", "-c", "100000")
			ev := newEvents()
			s, err := Start(src, []Consumer{c1, c2}, Config{Copy: eng.copy}, ev.notify)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = prod.Wait(t)
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("producer exit: %v", err)
			}
			if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
				t.Errorf("producer status %v, want killed by SIGPIPE", ws)
			}
			ev.waitDone(t)
			if !ev.has(EventAllGone) {
				t.Errorf("events %v: no all-gone", ev.kinds())
			}
		})
	}
}

func TestThrottledMovesOnlyGrantedBytes(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			const size = 1 << 20
			_, src := producer(t, "head", "-c", strconv.Itoa(size), "/dev/zero")
			wc, c := consumer(t, "wc", "wc", "-c")
			wants := make(chan int64, 16)
			ev := newEvents()
			notify := func(e Event) {
				if e.Kind == EventNeedCredit {
					wants <- e.Want
				}
				ev.notify(e)
			}
			s, err := Start(src, []Consumer{c}, Config{Throttled: true, ChunkBytes: 8192, Copy: eng.copy}, notify)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var granted int64
			for {
				select {
				case w := <-wants:
					if w <= 0 || w > 8192 {
						t.Fatalf("want %d outside (0, 8192]", w)
					}
					if in := s.Counters().BytesIn; int64(in) > granted {
						t.Fatalf("moved %d bytes with %d granted", in, granted)
					}
					granted += w
					s.Grant(w)
					continue
				case <-ev.done:
				case <-time.After(60 * time.Second):
					t.Fatal("throttled splitter stuck")
				}
				break
			}
			if err := wc.Wait(t); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(wc.out.String()); got != strconv.Itoa(size) {
				t.Errorf("wc -c = %s", got)
			}
			if in := s.Counters().BytesIn; in != size || int64(in) > granted {
				t.Errorf("BytesIn %d, granted %d", in, granted)
			}
			if s.Counters().Throttled <= 0 {
				t.Error("no time counted waiting for credit")
			}
		})
	}
}

func TestTapReceivesAndSlowTapDrops(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			cat, c := consumer(t, "cat", "wc", "-c")
			s, err := Start(r, []Consumer{c}, Config{Copy: eng.copy}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			live, err := s.AddTap(0)
			if err != nil {
				t.Fatal(err)
			}
			slow, err := s.AddTap(4096)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("hello tap\n")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, err := io.ReadAtLeast(live, buf, 10)
			if err != nil || string(buf[:n]) != "hello tap\n" {
				t.Fatalf("tap read %q, %v", buf[:n], err)
			}
			if cnt := s.Counters(); len(cnt.Taps) != 2 || cnt.Taps[0].Name != live.Name() || !cnt.Taps[0].Tap {
				t.Fatalf("taps in counters: %+v", cnt.Taps)
			}
			// 4 MiB through a 4 KiB tap nobody reads: it drops, the consumer does not.
			const size = 4 << 20
			go func() {
				_, _ = w.Write(make([]byte, size))
				w.Close()
			}()
			got, err := io.Copy(io.Discard, live)
			if err != nil {
				t.Fatal(err)
			}
			if err := cat.Wait(t); err != nil {
				t.Fatal(err)
			}
			if out := strings.TrimSpace(cat.out.String()); out != strconv.Itoa(size+10) {
				t.Errorf("consumer got %s bytes, want %d", out, size+10)
			}
			<-s.Done()
			if slow.Dropped() == 0 || slow.BytesTotal()+slow.Dropped() != size+10 {
				t.Errorf("slow tap: total %d dropped %d", slow.BytesTotal(), slow.Dropped())
			}
			if uint64(got)+uint64(n) != live.BytesTotal() {
				t.Errorf("live tap read %d, counted %d", uint64(got)+uint64(n), live.BytesTotal())
			}
			if _, err := s.AddTap(0); !errors.Is(err, ErrClosed) {
				t.Errorf("AddTap after stop: %v, want ErrClosed", err)
			}
			live.Close()
			slow.Close()
			slow.Close()
		})
	}
}

func TestTapOnlySplitterDrainsToEOF(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(r, nil, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tap, err := s.AddTap(0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = w.Write(bytes.Repeat([]byte("x"), 1000))
		w.Close()
	}()
	b, err := io.ReadAll(tap)
	if err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	if len(b)+int(tap.Dropped()) != 1000 || s.Counters().BytesIn != 1000 {
		t.Errorf("tap read %d dropped %d, bytes in %d", len(b), tap.Dropped(), s.Counters().BytesIn)
	}
	tap.Close()
}

func TestClosedTapIsDetached(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, c := consumer(t, "c", "cat")
	s, err := Start(r, []Consumer{c}, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tap, err := s.AddTap(0)
	if err != nil {
		t.Fatal(err)
	}
	tap.Close()
	if _, err := tap.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if n := len(s.Counters().Taps); n != 0 {
		t.Errorf("%d taps after Close", n)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestNonPipeConsumerUsesCopyEngine(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	_, src := producer(t, "seq", "1", "50000")
	wc, c := consumer(t, "wc", "wc", "-c")
	s, err := Start(src, []Consumer{{Name: "file", W: f}, c}, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ZeroCopy() {
		t.Fatal("zero-copy engine with a regular file consumer")
	}
	<-s.Done()
	if err := wc.Wait(t); err != nil {
		t.Fatal(err)
	}
	want, _ := exec.Command("seq", "1", "50000").Output()
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("file got %d bytes, want %d", len(got), len(want))
	}
	if w := strings.TrimSpace(wc.out.String()); w != strconv.Itoa(len(want)) {
		t.Errorf("wc -c = %s, want %d", w, len(want))
	}
}

func TestCountersMatchDeliveredBytes(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			_, src := producer(t, "head", "-c", "12345678", "/dev/zero")
			var procs []*proc
			var cons []Consumer
			for i := range 2 {
				p, c := consumer(t, fmt.Sprint("wc", i), "wc", "-c")
				procs = append(procs, p)
				cons = append(cons, c)
			}
			s, err := Start(src, cons, Config{Copy: eng.copy}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			<-s.Done()
			c := s.Counters()
			for i, p := range procs {
				if err := p.Wait(t); err != nil {
					t.Fatal(err)
				}
				n, _ := strconv.ParseUint(strings.TrimSpace(p.out.String()), 10, 64)
				if n != 12345678 || c.Consumers[i].BytesTotal != n {
					t.Errorf("%s: delivered %d, counted %d", c.Consumers[i].Name, n, c.Consumers[i].BytesTotal)
				}
			}
			if c.BytesIn != 12345678 {
				t.Errorf("BytesIn = %d", c.BytesIn)
			}
		})
	}
}

func TestCloseStopsABlockedPumpAndReleasesFiles(t *testing.T) {
	before := countFds(t)
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			prod, src := producer(t, "yes")
			stalled, c := consumer(t, "stalled", "sleep", "1000")
			ev := newEvents()
			s, err := Start(src, []Consumer{c}, Config{Copy: eng.copy, BufferBytes: 4096}, ev.notify)
			if err != nil {
				t.Fatal(err)
			}
			tap, err := s.AddTap(0)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for s.Counters().BytesIn == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			s.Close()
			s.Close()
			if d := ev.waitDone(t); d.Err != nil {
				t.Errorf("done: %v", d.Err)
			}
			if _, err := io.ReadAll(tap); err != nil {
				t.Errorf("tap after Close: %v", err)
			}
			tap.Close()
			// The source is closed: the producer dies of SIGPIPE.
			if err := prod.Wait(t); err == nil {
				t.Error("producer exited 0 after its reader closed")
			}
			_ = stalled.cmd.Process.Kill()
		})
	}
	if after := countFds(t); after > before {
		t.Errorf("fds: %d before, %d after", before, after)
	}
}

// TestBlockingDescriptorsAreAdopted gives the splitter files made with
// os.NewFile from blocking descriptors (not in Go's poller): it must still
// deliver, wait without blocking a thread forever, and stop on Close.
func TestBlockingDescriptorsAreAdopted(t *testing.T) {
	blockingPipe := func() (*os.File, *os.File) {
		var p [2]int
		if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		return os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			sr, sw := blockingPipe()
			cr, cw := blockingPipe()
			cmd := exec.Command("wc", "-c")
			cmd.Stdin = cr
			wc := start(t, cmd)
			cr.Close()
			s, err := Start(sr, []Consumer{{Name: "wc", W: cw}}, Config{Copy: eng.copy}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// The pump waits for the source in Go's poller; Close must not be
			// needed to get the bytes through.
			time.Sleep(10 * time.Millisecond)
			if _, err := sw.Write(bytes.Repeat([]byte("z"), 300000)); err != nil {
				t.Fatal(err)
			}
			sw.Close()
			<-s.Done()
			if err := wc.Wait(t); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(wc.out.String()); got != "300000" {
				t.Errorf("wc -c = %s", got)
			}
		})
	}
	// A pump parked on a blocking-born source is woken by Close.
	sr, sw := blockingPipe()
	defer sw.Close()
	_, c := consumer(t, "c", "cat")
	s, err := Start(sr, []Consumer{c}, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not wake the pump")
	}
}

func countFds(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestStartRejectsBadInput(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	tests := []struct {
		name string
		src  *os.File
		cons []Consumer
		cfg  Config
		want string
	}{
		{"nil source", nil, nil, Config{}, "source is nil"},
		{"bad policy", r, nil, Config{Policy: 7}, "unknown policy 7"},
		{"negative buffer", r, nil, Config{BufferBytes: -1}, "buffer bytes -1 is negative"},
		{"negative chunk", r, nil, Config{ChunkBytes: -5}, "chunk bytes -5 is negative"},
		{"empty name", r, []Consumer{{W: w}}, Config{}, "consumers[0]: empty name"},
		{"duplicate name", r, []Consumer{{Name: "a", W: w}, {Name: "a", W: w}}, Config{}, `consumers[1]: duplicate name "a"`},
		{"nil writer", r, []Consumer{{Name: "a"}}, Config{}, "consumers[0] (a): write end is nil"},
		{"writer is source", r, []Consumer{{Name: "a", W: r}}, Config{}, "consumers[0] (a): write end is the source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(tt.src, tt.cons, tt.cfg, nil)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want ErrBadConfig mentioning %q", err, tt.want)
			}
		})
	}
}

func TestAddTapRejectsNegativeBuffer(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(r, nil, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer w.Close()
	if _, err := s.AddTap(-1); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "tap buffer bytes -1") {
		t.Errorf("AddTap(-1): %v", err)
	}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in   string
		want Policy
		err  string
	}{
		{"", Block, ""}, {"block", Block, ""}, {"drop", Drop, ""},
		{"Drop", Block, `slow_consumer "Drop"`}, {"lossy", Block, `slow_consumer "lossy"`},
	}
	for _, tt := range tests {
		got, err := ParsePolicy(tt.in)
		if tt.err == "" && (err != nil || got != tt.want) {
			t.Errorf("ParsePolicy(%q) = %v, %v", tt.in, got, err)
		}
		if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParsePolicy(%q) error %v, want %q", tt.in, err, tt.err)
		}
	}
	if Block.String() != "block" || Drop.String() != "drop" || EventDone.String() != "done" {
		t.Error("String methods")
	}
}
