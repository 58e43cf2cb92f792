// This file owns the pump: the one goroutine of a Splitter that moves bytes
// from the source to the consumers and taps. Two engines share one model:
//
//   - the zero-copy engine (every file a pipe): each consumer has an offset
//     into the unread head of the source pipe; tee(2) duplicates pages into a
//     consumer whose offset is 0, and the bytes every consumer has are then
//     consumed either by splice(2) to the last consumer that needs them or
//     by a splice(2) to /dev/null. A consumer that took part of a window is
//     simply ahead; the others catch up before the source moves on. With one
//     consumer this is a plain splice(2) loop.
//   - the copying engine: read a chunk into a buffer, write it to each
//     consumer with non-blocking writes.
//
// Every file is non-blocking and the pump only ever waits for what it needs:
// the source when every consumer has everything, else a consumer that has
// not taken the head yet. It parks in Go's poller (RawConn Read/Write), not
// in a blocking syscall: with timers pending, as in any daemon, a goroutine
// blocked in poll(2) costs a P hand-off per wait (measured: 3x the CPU per
// byte). Close wakes it with a past deadline. Only Drop's "any consumer with
// room" wait uses poll(2), with an eventfd that Close writes. Under Block the
// pump waits for the consumers that have not taken the current bytes; under
// Drop it waits only when no consumer can take anything, and a consumer found
// full once another one has moved on loses those bytes. Taps are written
// once, non-blocking, and lose whatever does not fit.
package flow

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// errStopped ends the pump when Close was called.
var errStopped = errors.New("flow: stopped")

// pumpTee is the zero-copy engine.
func (s *Splitter) pumpTee() error {
	alive := slices.Clone(s.cons)
	hadConsumers := len(alive) > 0
	var taps []*sink
	admitted := 0 // throttled: bytes at the source's head the pump may move
	var waitSet []*sink

	// advance accounts for k bytes leaving the source's head; except is
	// the consumer that took them with splice (its offset stays 0).
	advance := func(k int, except *sink) {
		s.bytesIn.Add(uint64(k))
		admitted -= k
		for _, c := range alive {
			if c != except {
				c.off -= k
			}
		}
		for _, t := range taps {
			if t.off < k {
				t.dropped.Add(uint64(k - t.off))
				t.off = 0
			} else {
				t.off -= k
			}
		}
	}

	for {
		if s.stopped() {
			return errStopped
		}
		taps = s.refreshTaps(taps)
		window := s.chunk
		if window == 0 {
			window = 1 << 30
		}
		{
			// The round moves only the bytes the source holds now: credits
			// are asked for bytes that exist, a splitter with no consumer
			// drains what is there, and bytes that arrive after the taps
			// were teed are not spliced to a consumer (and so lost to a
			// tap) in the same round.
			avail, err := fionread(s.srcFd)
			if err != nil {
				return fmt.Errorf("flow: source: %w", err)
			}
			if avail == 0 {
				hup, err := s.waitSource()
				if err != nil {
					return err
				}
				if hup {
					if avail, err = fionread(s.srcFd); err == nil && avail == 0 {
						s.emit(Event{Kind: EventSourceEOF})
						return nil
					}
				}
				continue
			}
			window = min(window, avail)
			if s.cfg.Throttled {
				if admitted == 0 {
					got, err := s.takeCredit(window)
					if err != nil {
						return err
					}
					admitted = got
				}
				window = min(window, admitted)
			}
		}
		if s.tapsDirty.Load() {
			// A tap came while the source was read: it may have been
			// added before some of these bytes were written, so it gets
			// them too.
			continue
		}

		for _, t := range taps {
			if t.off != 0 || t.gone.Load() {
				continue
			}
			k, err := tee(s.srcFd, t.fd, window)
			switch {
			case err == nil:
				t.off = k
				t.total.Add(uint64(k))
			case errors.Is(err, unix.EAGAIN):
			default:
				s.removeTap(t)
			}
		}

		// Every consumer at offset 0 needs the head of the source: tee it to
		// each, except that the last one waiting (all the others are ahead)
		// takes its bytes with splice, which also consumes them.
		progress, eof := false, false
		known := false // the source surely holds bytes: EAGAIN means "full"
		for _, c := range alive {
			if c.off > 0 {
				known = true
			}
		}
		for _, c := range alive {
			if c.off != 0 || c.gone.Load() {
				continue
			}
			others, lim := 0, window
			for _, o := range alive {
				if o == c || o.gone.Load() {
					continue
				}
				if o.off == 0 {
					others++
				} else {
					lim = min(lim, o.off)
				}
			}
			var k int
			var err error
			if others == 0 {
				k, err = splice(s.srcFd, c.fd, lim)
			} else {
				k, err = tee(s.srcFd, c.fd, window)
			}
			c.full = false
			switch {
			case err == nil && k > 0:
				c.total.Add(uint64(k))
				progress, known = true, true
				if others == 0 {
					advance(k, c)
				} else {
					c.off = k
				}
			case err == nil:
				eof = true // empty source, no writer left
			case errors.Is(err, unix.EAGAIN):
				c.full = known
			default:
				s.consumerGone(c, err)
			}
		}
		alive = slices.DeleteFunc(alive, func(c *sink) bool { return c.gone.Load() })
		if hadConsumers && len(alive) == 0 {
			s.emit(Event{Kind: EventAllGone})
			return nil
		}
		if eof && !progress {
			s.emit(Event{Kind: EventSourceEOF})
			return nil
		}

		if s.cfg.Policy == Drop {
			lead := 0
			for _, c := range alive {
				lead = max(lead, c.off)
			}
			if lead > 0 {
				for _, c := range alive {
					if c.off == 0 && c.full {
						c.dropped.Add(uint64(lead))
						c.off = lead
					}
				}
			}
		}

		// Drain what every consumer has (with no consumer, the window: the
		// taps had their chance).
		d := window
		if len(alive) > 0 {
			d = alive[0].off
			for _, c := range alive[1:] {
				d = min(d, c.off)
			}
		}
		if d > 0 {
			if err := s.drain(d); err != nil {
				return err
			}
			advance(d, nil)
			continue
		}
		if progress {
			continue
		}
		// Nothing moved: wait for the source or for room at a consumer that
		// still needs the head of the source.
		avail, err := fionread(s.srcFd)
		if err != nil {
			return fmt.Errorf("flow: source: %w", err)
		}
		if avail == 0 {
			if _, err := s.waitSource(); err != nil {
				return err
			}
			continue
		}
		waitSet = waitSet[:0]
		for _, c := range alive {
			if c.off == 0 {
				waitSet = append(waitSet, c)
			}
		}
		if err := s.waitWritable(waitSet); err != nil {
			return err
		}
	}
}

// drain discards n bytes from the head of the source.
func (s *Splitter) drain(n int) error {
	for n > 0 {
		k, err := splice(s.srcFd, s.devNull, n)
		if err != nil {
			return fmt.Errorf("flow: drain source: %w", err)
		}
		if k == 0 {
			return fmt.Errorf("flow: drain source: %d bytes missing", n)
		}
		n -= k
	}
	return nil
}

// pumpCopy is the copying engine.
func (s *Splitter) pumpCopy() error {
	alive := slices.Clone(s.cons)
	hadConsumers := len(alive) > 0
	var taps []*sink
	buf := make([]byte, s.chunk)
	n := 0 // bytes of the current chunk in buf
	var waitSet []*sink
	for {
		if s.stopped() {
			return errStopped
		}
		taps = s.refreshTaps(taps)
		if n == 0 {
			want := len(buf)
			if s.cfg.Throttled {
				// Ask for credit only for bytes that exist.
				hup, err := s.waitSource()
				if err != nil {
					return err
				}
				if avail, err := fionread(s.srcFd); err == nil && avail > 0 {
					want = min(want, avail)
				} else if hup {
					want = 1 // probe for EOF
				}
				if want, err = s.takeCredit(want); err != nil {
					return err
				}
			}
			k, err := unix.Read(s.srcFd, buf[:want])
			if s.cfg.Throttled && want > max(k, 0) {
				s.refund(want - max(k, 0))
			}
			switch {
			case errors.Is(err, unix.EAGAIN):
				if _, err := s.waitSource(); err != nil {
					return err
				}
				continue
			case errors.Is(err, unix.EINTR):
				continue
			case err != nil:
				return fmt.Errorf("flow: read source: %w", err)
			case k == 0:
				s.emit(Event{Kind: EventSourceEOF})
				return nil
			}
			n = k
			s.bytesIn.Add(uint64(k))
			// A tap added before these bytes were written takes them too.
			taps = s.refreshTaps(taps)
			for _, t := range taps {
				if t.gone.Load() {
					continue
				}
				w, err := writeFd(t.fd, buf[:n])
				if err != nil && !errors.Is(err, unix.EAGAIN) {
					s.removeTap(t)
					continue
				}
				t.total.Add(uint64(w))
				t.dropped.Add(uint64(n - w))
			}
			for _, c := range alive {
				c.off = 0
				c.full = false
			}
		}

		progress, completed := false, false
		for _, c := range alive {
			if c.off == n {
				completed = true
				continue
			}
			k, err := writeFd(c.fd, buf[c.off:n])
			switch {
			case err == nil:
				c.full = false
				c.off += k
				c.total.Add(uint64(k))
				progress = progress || k > 0
				completed = completed || c.off == n
			case errors.Is(err, unix.EAGAIN):
				c.full = true
			default:
				s.consumerGone(c, err)
			}
		}
		alive = slices.DeleteFunc(alive, func(c *sink) bool { return c.gone.Load() })
		if hadConsumers && len(alive) == 0 {
			s.emit(Event{Kind: EventAllGone})
			return nil
		}
		if s.cfg.Policy == Drop && completed {
			for _, c := range alive {
				if c.off < n && c.full {
					c.dropped.Add(uint64(n - c.off))
					c.off = n
				}
			}
		}
		waitSet = waitSet[:0]
		for _, c := range alive {
			if c.off < n {
				waitSet = append(waitSet, c)
			}
		}
		if len(waitSet) == 0 {
			n = 0
			continue
		}
		if progress {
			continue
		}
		if err := s.waitWritable(waitSet); err != nil {
			return err
		}
	}
}

// consumerGone closes a consumer that failed and reports it.
func (s *Splitter) consumerGone(c *sink, err error) {
	c.gone.Store(true)
	_ = c.f.Close()
	s.emit(Event{Kind: EventConsumerGone, Consumer: c.name, Err: err})
}

func (s *Splitter) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// takeCredit waits until some credit is available and takes up to want
// bytes of it. It keeps one request for credit (EventNeedCredit) out ahead:
// as soon as the pump holds none, it asks again, so the next grant is on its
// way while these bytes move.
func (s *Splitter) takeCredit(want int) (int, error) {
	ahead := int64(want)
	if s.chunk > 0 {
		ahead = int64(s.chunk)
	}
	for {
		s.creditMu.Lock()
		g := min(s.credit, int64(want))
		s.credit -= g
		ask := s.credit == 0 && !s.asked
		if ask {
			s.asked = true
		}
		s.creditMu.Unlock()
		if ask {
			s.emit(Event{Kind: EventNeedCredit, Want: ahead})
		}
		if g > 0 {
			return int(g), nil
		}
		began := time.Now()
		select {
		case <-s.creditCh:
			s.creditWait.Add(int64(time.Since(began)))
		case <-s.stop:
			return 0, errStopped
		}
	}
}

// refund returns credit taken but not used.
func (s *Splitter) refund(n int) {
	s.creditMu.Lock()
	s.credit += int64(n)
	s.creditMu.Unlock()
}

// waitSource waits until the source is readable or hung up.
func (s *Splitter) waitSource() (hup bool, err error) {
	if !s.src.pollable {
		fds := []unix.PollFd{{Fd: int32(s.srcFd), Events: unix.POLLIN}, {Fd: int32(s.wakeFd), Events: unix.POLLIN}}
		if err := s.poll(fds); err != nil {
			return false, err
		}
		re := fds[0].Revents
		return re&unix.POLLIN == 0 && re&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0, nil
	}
	err = s.src.rc.Read(func(fd uintptr) bool {
		re := poll1(int(fd), unix.POLLIN)
		hup = re&unix.POLLIN == 0 && re&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
		return re != 0
	})
	return hup, s.waitErr(err)
}

// waitWritable waits until a sink has room (or has failed). Under Block it
// parks in Go's poller on the first sink, since every one of them must take
// the bytes anyway; under Drop any sink that gets room will do, which only
// poll(2) can wait for.
func (s *Splitter) waitWritable(sinks []*sink) error {
	if len(sinks) == 0 {
		return nil
	}
	if c := sinks[0]; c.pollable && (len(sinks) == 1 || s.cfg.Policy == Block) {
		return s.waitErr(c.rc.Write(func(fd uintptr) bool {
			return poll1(int(fd), unix.POLLOUT) != 0
		}))
	}
	fds := make([]unix.PollFd, 0, len(sinks)+1)
	for _, c := range sinks {
		fds = append(fds, unix.PollFd{Fd: int32(c.fd), Events: unix.POLLOUT})
	}
	fds = append(fds, unix.PollFd{Fd: int32(s.wakeFd), Events: unix.POLLIN})
	return s.poll(fds)
}

// waitErr maps the error of a wait in Go's poller: Close wakes waiters by
// setting a deadline in the past.
func (s *Splitter) waitErr(err error) error {
	if err == nil {
		return nil
	}
	if s.stopped() {
		return errStopped
	}
	return fmt.Errorf("flow: wait: %w", err)
}

// poll1 returns fd's ready events among events, without waiting.
func poll1(fd int, events int16) int16 {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		_, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return unix.POLLERR
		}
		return fds[0].Revents
	}
}

// poll waits on fds, whose last entry is the wake eventfd.
func (s *Splitter) poll(fds []unix.PollFd) error {
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("flow: poll: %w", err)
		}
		if fds[len(fds)-1].Revents != 0 {
			return errStopped
		}
		return nil
	}
}

func tee(in, out, n int) (int, error) {
	for {
		k, err := unix.Tee(in, out, n, unix.SPLICE_F_NONBLOCK)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return int(k), err
	}
}

func splice(in, out, n int) (int, error) {
	for {
		k, err := unix.Splice(in, nil, out, nil, n, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return int(k), err
	}
}

func writeFd(fd int, p []byte) (int, error) {
	for {
		k, err := unix.Write(fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return max(k, 0), err
	}
}

func fionread(fd int) (int, error) {
	return unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
}
