// Command floor is the baseline side of the daemon benchmarks: a separate
// Go process doing the least that a figure of shipote's daemon can be
// compared with, so that both sides pay for a process and a Go runtime.
//
//	floor procs N ARGV...   N children started with os/exec (stdout and
//	                        stderr piped to io.Discard, one Wait goroutine
//	                        each): the least a supervisor keeps per process.
//	floor actors N          N protoactor actors, each holding a workspace
//	                        spec: the least a workspace actor can be.
//	floor http SOCKET PATH=FILE...
//	                        net/http on a Unix socket answering GET PATH
//	                        (a PATH with a query matches that query only)
//	                        with the bytes of FILE: an API answer that costs
//	                        nothing to build.
//	floor produce RATE SIZE LINE
//	                        LINE and a newline written to stdout again and
//	                        again, SIZE bytes in all at RATE bytes/s (whole
//	                        lines, paced against the clock), then exit: a
//	                        command whose output rate is known.
//
// The protocol is line-based: floor prints "ready" once set up, and for
// procs and actors waits for a line "go" on stdin, does the work and prints
// "done". It exits when stdin closes, killing its children.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/messages"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: floor procs N ARGV | actors N | http SOCKET PATH=FILE [PATH=FILE] | produce RATE SIZE LINE")
	}
	in := bufio.NewScanner(os.Stdin)
	switch args[0] {
	case "procs":
		n, err := count(args[1])
		if err != nil {
			return err
		}
		if len(args) < 3 {
			return errors.New("procs: no command given")
		}
		return staged(in, func() (func(), error) { return procs(n, args[2:]) })
	case "actors":
		n, err := count(args[1])
		if err != nil {
			return err
		}
		return staged(in, func() (func(), error) { return actors(n) })
	case "http":
		return serve(in, args[1], args[2:])
	case "produce":
		return produce(args[1:])
	default:
		return fmt.Errorf("unknown mode %q", args[0])
	}
}

func count(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("count: want a positive integer, got %q", s)
	}
	return n, nil
}

// staged prints "ready", waits for "go", runs work, prints "done" and
// waits for stdin to close, then undoes the work. Like the daemon it is
// compared with, it leaves garbage collection to the Go runtime.
func staged(in *bufio.Scanner, work func() (func(), error)) error {
	fmt.Println("ready")
	if !in.Scan() || strings.TrimSpace(in.Text()) != "go" {
		return errors.New(`stdin closed before "go"`)
	}
	undo, err := work()
	if err != nil {
		return err
	}
	defer undo()
	fmt.Println("done")
	for in.Scan() {
	}
	return nil
}

func procs(n int, argv []string) (func(), error) {
	cmds := make([]*exec.Cmd, 0, n)
	undo := func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
	}
	for range n {
		c := exec.Command(argv[0], argv[1:]...)
		c.Stdout, c.Stderr = io.Discard, io.Discard
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			undo()
			return nil, fmt.Errorf("start %s: %w", argv[0], err)
		}
		cmds = append(cmds, c)
		go func() { _ = c.Wait() }()
	}
	return undo, nil
}

// holder is an actor that keeps a workspace's spec and answers with it.
type holder struct {
	spec messages.WorkspaceSpec
	id   string
}

func (h *holder) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(string); ok {
		ctx.Respond(h.spec)
	}
}

func actors(n int) (func(), error) {
	sys := actor.NewActorSystem()
	pids := make([]*actor.PID, 0, n)
	for i := range n {
		h := &holder{id: fmt.Sprintf("%026d", i), spec: messages.WorkspaceSpec{Label: fmt.Sprintf("w%04d", i)}}
		pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return h }), h.id)
		if err != nil {
			return nil, fmt.Errorf("spawn: %w", err)
		}
		pids = append(pids, pid)
	}
	return func() {
		for _, p := range pids {
			sys.Root.Stop(p)
		}
		sys.Shutdown()
	}, nil
}

func serve(in *bufio.Scanner, sock string, routes []string) error {
	bodies := map[string][]byte{}
	for _, r := range routes {
		// The last "=" splits: a PATH's query has its own.
		i := strings.LastIndex(r, "=")
		ok := i > 0
		path, file := r[:max(i, 0)], r[i+1:]
		if !ok {
			return fmt.Errorf("route %q: want PATH=FILE", r)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("route %s: %w", path, err)
		}
		bodies[path] = b
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.RequestURI()]
		if !ok {
			b, ok = bodies[r.URL.Path]
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Println("ready")
	for in.Scan() {
	}
	_ = srv.Shutdown(context.Background())
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// produce writes whole copies of line+"\n" to stdout, size bytes in all
// (rounded down to whole lines), never ahead of rate bytes/s since its
// start.
func produce(args []string) error {
	if len(args) != 3 {
		return errors.New("produce: want RATE SIZE LINE")
	}
	rate, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || rate <= 0 {
		return fmt.Errorf("produce: rate: want a positive integer, got %q", args[0])
	}
	size, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || size <= 0 {
		return fmt.Errorf("produce: size: want a positive integer, got %q", args[1])
	}
	line := []byte(args[2] + "\n")
	ll := int64(len(line))
	size -= size % ll
	buf := bytes.Repeat(line, max(1, (64<<10)/len(line)))
	start := time.Now()
	var sent int64
	for sent < size {
		allowed := min(size, int64(time.Since(start).Seconds()*float64(rate)))
		n := min(allowed-sent, int64(len(buf)))
		n -= n % ll
		if n <= 0 {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		if _, err := os.Stdout.Write(buf[:n]); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		sent += n
	}
	return nil
}
