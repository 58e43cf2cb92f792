// Package flow is shipote's data plane: a Splitter reads one producer's
// output and broadcasts every byte to each consumer, in order, without any
// actor in the byte path. It owns the file descriptors it is given and one
// goroutine (the pump); control and accounting reach it through Grant, AddTap,
// Counters and Close, and it reports what happens through a notify callback.
//
// This file owns the public API: Policy, Config, Consumer, Event, Counters,
// Start, Grant, Counters, Done and Close.
package flow

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultBufferBytes is the per-consumer buffer when Config.BufferBytes is 0.
const DefaultBufferBytes = 1 << 20

// DefaultCopyChunkBytes is the read size of the copying engine when
// Config.ChunkBytes is 0.
const DefaultCopyChunkBytes = 64 << 10

var (
	// ErrClosed is returned by AddTap once the splitter has stopped.
	ErrClosed = errors.New("flow: splitter closed")
	// ErrBadConfig is wrapped by every validation error of Start and AddTap.
	ErrBadConfig = errors.New("flow: bad config")
)

// Policy says what a splitter does with a consumer that cannot keep up.
type Policy int

const (
	// Block is lossless, like tee(1): the producer is paced by the slowest
	// consumer.
	Block Policy = iota
	// Drop paces the producer by the fastest consumer: a consumer whose
	// buffer is full when the fastest one has moved on loses those bytes,
	// counted in its DroppedBytes.
	Drop
)

// String returns "block" or "drop".
func (p Policy) String() string {
	switch p {
	case Block:
		return "block"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy maps "block" (or "") and "drop" to a Policy.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "block":
		return Block, nil
	case "drop":
		return Drop, nil
	}
	return Block, fmt.Errorf("%w: slow_consumer %q: want \"block\" or \"drop\"", ErrBadConfig, s)
}

// Config configures a Splitter. The zero value is a lossless splitter with
// 1 MiB buffers and no throttling.
type Config struct {
	// Policy is Block (the zero value) or Drop.
	Policy Policy
	// BufferBytes is each consumer's buffer: the size set with F_SETPIPE_SZ
	// on every consumer pipe and on the source pipe (best effort; the kernel
	// rounds up to a power of two pages). 0 means DefaultBufferBytes.
	BufferBytes int
	// ChunkBytes caps the bytes moved in one step. 0 means
	// DefaultCopyChunkBytes for the copying engine and the whole content of
	// the source pipe for zero-copy moves. Throttled splitters set it to
	// their burst so that no step outruns the token bucket.
	ChunkBytes int
	// Throttled makes the pump move bytes only against credits given with
	// Grant; it asks for them with EventNeedCredit.
	Throttled bool
	// Copy forces the copying engine even when every file is a pipe
	// (zero-copy tee(2)/splice(2) is used otherwise).
	Copy bool
}

// Consumer is one destination of a splitter.
type Consumer struct {
	// Name labels the consumer in counters and events (the edge's target
	// node). It must be non-empty and unique within a splitter.
	Name string
	// W is the consumer's stdin write end; the splitter owns it once Start
	// succeeds and closes it at the source's EOF or when the consumer goes.
	W *os.File
}

// EventKind says what an Event reports.
type EventKind int

const (
	// EventNeedCredit asks for credits (Event.Want bytes) in throttled mode.
	// The pump keeps exactly one request out: it asks again only after
	// Grant, as soon as it has taken all the credit it holds.
	EventNeedCredit EventKind = iota + 1
	// EventConsumerGone reports a consumer that went away (EPIPE or another
	// write error in Event.Err); its write end has been closed.
	EventConsumerGone
	// EventSourceEOF reports the producer's EOF: everything read has been
	// delivered and every consumer's write end is being closed.
	EventSourceEOF
	// EventAllGone reports that the last consumer went away; the source is
	// being closed, so the producer gets SIGPIPE on its next write.
	EventAllGone
	// EventDone is the last event: the pump has stopped and every file the
	// splitter owned is closed. Event.Err is non-nil when the pump failed.
	EventDone
)

// String names the kind.
func (k EventKind) String() string {
	switch k {
	case EventNeedCredit:
		return "need-credit"
	case EventConsumerGone:
		return "consumer-gone"
	case EventSourceEOF:
		return "source-eof"
	case EventAllGone:
		return "all-gone"
	case EventDone:
		return "done"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is something the pump reports through the notify callback.
type Event struct {
	Kind     EventKind
	Consumer string // EventConsumerGone: the consumer's name
	Err      error  // EventConsumerGone: why; EventDone: the pump's failure, if any
	Want     int64  // EventNeedCredit: bytes wanted
}

// ChannelCounters are the counters of one consumer or tap.
type ChannelCounters struct {
	Name         string // consumer name, or "tap-<id>"
	Tap          bool
	BytesTotal   uint64 // bytes delivered
	DroppedBytes uint64 // bytes lost (Drop policy, or a slow tap)
	Gone         bool   // the consumer went away
}

// Counters is a snapshot of a splitter's counters.
type Counters struct {
	BytesIn   uint64            // bytes taken from the source
	Throttled time.Duration     // time the pump waited for credit
	Consumers []ChannelCounters // in the order given to Start
	Taps      []ChannelCounters // live taps, oldest first
}

// Splitter broadcasts a source to its consumers. Create it with Start; stop
// it with Close.
type Splitter struct {
	cfg    Config
	notify func(Event)
	chunk  int  // cap of one step; 0 = none
	tee    bool // zero-copy engine

	src     *sink // the source (its counters are unused)
	srcFd   int
	cons    []*sink // fixed at Start; I/O fields are pump-only
	devNull int     // drain target of the zero-copy engine
	wakeFd  int     // eventfd: Close wakes the pump's poll

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	bytesIn  atomic.Uint64
	// creditWait is the time in ns the pump waited for credit.
	creditWait atomic.Int64

	// creditMu guards the following.
	creditMu sync.Mutex
	credit   int64
	asked    bool
	creditCh chan struct{} // capacity 1: wakes a pump waiting for credit

	// tapMu guards the following.
	tapMu    sync.Mutex
	taps     []*Tap
	finished bool // the pump has stopped; AddTap fails
	nextTap  uint64

	tapsDirty atomic.Bool // the tap registry changed since the pump looked
	pumpTaps  []*sink     // the taps the pump writes to; pump-only
}

// sink is a file the pump moves bytes through: the source, a consumer, or
// a tap's write end.
type sink struct {
	name     string
	f        *os.File
	fd       int
	rc       syscall.RawConn // waits in Go's poller when pollable
	pollable bool
	tap      *Tap // nil for consumers

	total, dropped atomic.Uint64
	gone           atomic.Bool

	// Pump-only state.
	off  int  // bytes of the current window already delivered
	full bool // the last write attempt found no room
}

// Start takes ownership of src and of every consumer's W (the caller must
// not use them afterwards) and starts the pump. notify (may be nil) is called from the pump goroutine and must not
// block. On error nothing is owned or started: the caller keeps the files.
//
// A splitter that starts with no consumer feeds its taps and discards the
// rest until the source's EOF. Taps never keep a producer alive: when the
// last consumer goes, the source is closed even if taps are attached.
func Start(src *os.File, consumers []Consumer, cfg Config, notify func(Event)) (*Splitter, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: source is nil", ErrBadConfig)
	}
	if cfg.Policy != Block && cfg.Policy != Drop {
		return nil, fmt.Errorf("%w: unknown policy %d", ErrBadConfig, int(cfg.Policy))
	}
	if cfg.BufferBytes < 0 {
		return nil, fmt.Errorf("%w: buffer bytes %d is negative", ErrBadConfig, cfg.BufferBytes)
	}
	if cfg.ChunkBytes < 0 {
		return nil, fmt.Errorf("%w: chunk bytes %d is negative", ErrBadConfig, cfg.ChunkBytes)
	}
	if cfg.BufferBytes == 0 {
		cfg.BufferBytes = DefaultBufferBytes
	}
	seen := make(map[string]bool, len(consumers))
	for i, c := range consumers {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("%w: consumers[%d]: empty name", ErrBadConfig, i)
		case seen[c.Name]:
			return nil, fmt.Errorf("%w: consumers[%d]: duplicate name %q", ErrBadConfig, i, c.Name)
		case c.W == nil:
			return nil, fmt.Errorf("%w: consumers[%d] (%s): write end is nil", ErrBadConfig, i, c.Name)
		case c.W == src:
			return nil, fmt.Errorf("%w: consumers[%d] (%s): write end is the source", ErrBadConfig, i, c.Name)
		}
		seen[c.Name] = true
	}

	s := &Splitter{
		cfg:      cfg,
		notify:   notify,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		creditCh: make(chan struct{}, 1),
		devNull:  -1,
		wakeFd:   -1,
	}
	srcFd, err := rawFd(src)
	if err != nil {
		return nil, fmt.Errorf("flow: source: %w", err)
	}
	allPipes := isPipe(srcFd)
	for _, c := range consumers {
		fd, err := rawFd(c.W)
		if err != nil {
			return nil, fmt.Errorf("flow: consumer %s: %w", c.Name, err)
		}
		if fd == srcFd {
			return nil, fmt.Errorf("%w: consumer %s: write end is the source", ErrBadConfig, c.Name)
		}
		allPipes = allPipes && isPipe(fd)
	}
	if s.wakeFd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("flow: eventfd: %w", err)
	}
	s.tee = allPipes && !cfg.Copy
	if s.tee {
		if s.devNull, err = unix.Open(os.DevNull, unix.O_WRONLY|unix.O_CLOEXEC, 0); err != nil {
			unix.Close(s.wakeFd)
			return nil, fmt.Errorf("flow: open %s: %w", os.DevNull, err)
		}
	}
	// From here on the splitter owns the files.
	s.src = adopt("source", src)
	s.srcFd = s.src.fd
	setPipeSize(s.srcFd, cfg.BufferBytes)
	for _, c := range consumers {
		k := adopt(c.Name, c.W)
		setPipeSize(k.fd, cfg.BufferBytes)
		s.cons = append(s.cons, k)
	}
	s.tee = allPipes && !cfg.Copy
	s.chunk = cfg.ChunkBytes
	if s.chunk == 0 && !s.tee {
		s.chunk = DefaultCopyChunkBytes
	}

	go s.run()
	return s, nil
}

// Grant gives the pump n bytes of credit (throttled mode). It never blocks.
func (s *Splitter) Grant(n int64) {
	if n <= 0 {
		return
	}
	s.creditMu.Lock()
	s.credit += n
	s.asked = false
	s.creditMu.Unlock()
	select {
	case s.creditCh <- struct{}{}:
	default:
	}
}

// Counters returns a snapshot of the counters. It is cheap: atomics and a
// short lock on the tap list.
func (s *Splitter) Counters() Counters {
	c := Counters{
		BytesIn:   s.bytesIn.Load(),
		Throttled: time.Duration(s.creditWait.Load()),
		Consumers: make([]ChannelCounters, len(s.cons)),
	}
	for i, k := range s.cons {
		c.Consumers[i] = k.counters()
	}
	s.tapMu.Lock()
	taps := append([]*Tap(nil), s.taps...)
	s.tapMu.Unlock()
	for _, t := range taps {
		c.Taps = append(c.Taps, t.sink.counters())
	}
	return c
}

func (k *sink) counters() ChannelCounters {
	return ChannelCounters{
		Name:         k.name,
		Tap:          k.tap != nil,
		BytesTotal:   k.total.Load(),
		DroppedBytes: k.dropped.Load(),
		Gone:         k.gone.Load(),
	}
}

// Done is closed once the pump has stopped and every owned file is closed.
func (s *Splitter) Done() <-chan struct{} { return s.done }

// ZeroCopy reports whether the splitter moves bytes with tee(2)/splice(2).
func (s *Splitter) ZeroCopy() bool { return s.tee }

// Close stops the pump, closes the source, every consumer's write end and
// every tap's write end, and waits for the pump to return. It is idempotent
// and safe to call from any goroutine, including after the pump has stopped
// on its own.
func (s *Splitter) Close() {
	s.stopOnce.Do(func() {
		close(s.stop)
		var one [8]byte
		one[0] = 1
		_, _ = unix.Write(s.wakeFd, one[:])
		// Wake a pump parked in Go's poller.
		now := time.Now()
		_ = s.src.f.SetDeadline(now)
		for _, c := range s.cons {
			_ = c.f.SetDeadline(now)
		}
	})
	<-s.done
}

// run is the pump goroutine.
func (s *Splitter) run() {
	var err error
	if s.tee {
		err = s.pumpTee()
	} else {
		err = s.pumpCopy()
	}
	if errors.Is(err, errStopped) {
		err = nil
	}
	s.finish()
	if s.notify != nil {
		s.notify(Event{Kind: EventDone, Err: err})
	}
	// wakeFd is closed after done so that a concurrent Close never writes
	// to a recycled descriptor.
	s.stopOnce.Do(func() { close(s.stop) })
	unix.Close(s.wakeFd)
	close(s.done)
}

// finish closes every file the splitter owns. Pump goroutine only.
func (s *Splitter) finish() {
	_ = s.src.f.Close()
	for _, c := range s.cons {
		if !c.gone.Load() {
			_ = c.f.Close()
		}
	}
	if s.devNull >= 0 {
		unix.Close(s.devNull)
	}
	s.tapMu.Lock()
	s.finished = true
	taps := s.taps
	s.taps = nil
	s.tapMu.Unlock()
	for _, t := range taps {
		_ = t.sink.f.Close()
	}
	for _, t := range s.pumpTaps {
		_ = t.f.Close()
	}
}

func (s *Splitter) emit(e Event) {
	if s.notify != nil {
		s.notify(e)
	}
}

// adopt makes a sink of a file the splitter now owns. The descriptor is
// made non-blocking; when f is not registered with Go's poller (a file made
// with os.NewFile from a blocking descriptor), a registered duplicate
// replaces it. Files the kernel cannot poll (regular files, /dev/null) never
// make the pump wait and stay as they are.
func adopt(name string, f *os.File) *sink {
	fd, _ := rawFd(f)
	_ = unix.SetNonblock(fd, true)
	if f.SetDeadline(time.Time{}) != nil {
		if nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
			nf := os.NewFile(uintptr(nfd), f.Name())
			if nf.SetDeadline(time.Time{}) == nil {
				_ = f.Close()
				f, fd = nf, nfd
			} else {
				_ = nf.Close()
			}
		}
	}
	k := &sink{name: name, f: f, fd: fd}
	k.pollable = f.SetDeadline(time.Time{}) == nil
	k.rc, _ = f.SyscallConn()
	return k
}

// rawFd returns f's descriptor without switching it to blocking mode (as
// File.Fd would).
func rawFd(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return -1, err
	}
	return fd, nil
}

func isPipe(fd int) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFIFO
}

// setPipeSize grows a pipe to size bytes, best effort: an unprivileged
// process may be held to /proc/sys/fs/pipe-max-size.
func setPipeSize(fd, size int) {
	if !isPipe(fd) {
		return
	}
	if cur, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0); err == nil && cur >= size {
		return
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, size); err != nil {
		if b, err := os.ReadFile("/proc/sys/fs/pipe-max-size"); err == nil {
			var max int
			if _, err := fmt.Sscan(string(b), &max); err == nil && max < size {
				_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, max)
			}
		}
	}
}
