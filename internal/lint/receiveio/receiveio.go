// Package receiveio checks that no actor's Receive blocks: it reports every
// known blocking call (sleeps, file and socket I/O, exec resolution,
// cgroup work, waits) made by a Receive method or by any function of the
// same package that a Receive calls, directly or through other functions.
//
// Work handed to a goroutine does not count: the body of a go statement, a
// function literal passed to a function or method named Go or goroutine
// (the runtime's goroutine helpers) or to time.AfterFunc. Any other
// function literal is taken to run where it is written. Calls through
// function values and interfaces of the package itself are not followed.
//
// The package is internal; its API is not stable.
package receiveio

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Blocking lists the calls that block or do I/O, by types.Func.FullName.
var Blocking = map[string]string{
	"time.Sleep": "sleeps",

	"os.Open":       "opens a file",
	"os.OpenFile":   "opens a file",
	"os.Create":     "creates a file",
	"os.CreateTemp": "creates a file",
	"os.ReadFile":   "reads a file",
	"os.WriteFile":  "writes a file",
	"os.ReadDir":    "reads a directory",
	"os.Mkdir":      "makes a directory",
	"os.MkdirAll":   "makes a directory",
	"os.MkdirTemp":  "makes a directory",
	"os.Remove":     "removes a file",
	"os.RemoveAll":  "removes files",
	"os.Rename":     "renames a file",
	"os.Stat":       "stats a file",
	"os.Lstat":      "stats a file",
	"os.Chmod":      "changes a file's mode",
	"os.Chown":      "changes a file's owner",
	"os.Readlink":   "reads a link",
	"os.Symlink":    "makes a link",
	"os.Truncate":   "truncates a file",

	"golang.org/x/sys/unix.Kill":                         "sends a signal",
	"github.com/shipote/shipote/internal/proc.KillGroup": "sends a signal",
	"(*os.File).Close":                                   "closes a file",
	"os/exec.LookPath":                                   "searches PATH",
	"(*os/exec.Cmd).Run":                                 "waits for a process",
	"(*os/exec.Cmd).Wait":                                "waits for a process",
	"(*os/exec.Cmd).Output":                              "waits for a process",
	"(*os/exec.Cmd).CombinedOutput":                      "waits for a process",
	"(*os.Process).Wait":                                 "waits for a process",
	"path/filepath.EvalSymlinks":                         "resolves links on disk",
	"path/filepath.Glob":                                 "reads directories",
	"path/filepath.Walk":                                 "reads directories",
	"path/filepath.WalkDir":                              "reads directories",
	"net.Dial":                                           "dials",
	"net.DialTimeout":                                    "dials",
	"net.DialUnix":                                       "dials",
	"net.Listen":                                         "listens",
	"net.ListenUnix":                                     "listens",
	"net.ListenPacket":                                   "listens",
	"(*net.Dialer).DialContext":                          "dials",
	"(*sync.WaitGroup).Wait":                             "waits for goroutines",
	"(*sync.Cond).Wait":                                  "waits on a condition",
	"(*golang.org/x/sync/errgroup.Group).Wait":           "waits for goroutines",

	"(*github.com/asynkron/protoactor-go/actor.Future).Result":   "waits for an answer",
	"(*github.com/asynkron/protoactor-go/actor.Future).Wait":     "waits for an answer",
	"(github.com/shipote/shipote/internal/askproc.Call[T]).Wait": "waits for an answer",

	"github.com/shipote/shipote/internal/proc.Resolve":          "searches PATH and stats files",
	"github.com/shipote/shipote/internal/proc.CheckAllowed":     "resolves links on disk",
	"github.com/shipote/shipote/internal/proc.Terminate":        "waits out a grace period",
	"github.com/shipote/shipote/internal/proc.TerminateWith":    "waits out a grace period",
	"github.com/shipote/shipote/internal/proc.Descendants":      "reads /proc",
	"(*github.com/shipote/shipote/internal/proc.Process).Wait":  "waits for a process",
	"(*github.com/shipote/shipote/internal/proc.Spawner).Start": "forks and execs",

	"(github.com/shipote/shipote/internal/limits.Backend).Create":      "makes a cgroup",
	"(github.com/shipote/shipote/internal/limits.Backend).Sweep":       "kills and removes cgroups",
	"(github.com/shipote/shipote/internal/limits.Group).Kill":          "kills a cgroup, polling until it is empty",
	"(github.com/shipote/shipote/internal/limits.Group).Remove":        "removes a cgroup, waiting for it to empty",
	"(github.com/shipote/shipote/internal/limits.Group).Usage":         "reads cgroup files",
	"(github.com/shipote/shipote/internal/limits.Group).Procs":         "reads cgroup files",
	"(github.com/shipote/shipote/internal/limits.OOMCounter).OOMKills": "reads cgroup files",
	"github.com/shipote/shipote/internal/limits.RemoveParent":          "removes cgroups",

	"github.com/shipote/shipote/internal/logfile.Open":             "opens a log file",
	"github.com/shipote/shipote/internal/logfile.MarkRemoved":      "writes a marker file",
	"github.com/shipote/shipote/internal/logfile.MarkRemovedLabel": "writes a marker file",
	"github.com/shipote/shipote/internal/logfile.Read":             "reads a log file",
	"github.com/shipote/shipote/internal/logfile.Sweep":            "removes log files",
	"(*github.com/shipote/shipote/internal/logfile.Writer).Close":  "waits for the file's queue",
	"(*github.com/shipote/shipote/internal/logfile.Writer).Flush":  "waits for the file's queue",
	"(*github.com/shipote/shipote/internal/logfile.Writer).Reopen": "reopens a file",
	"(*github.com/shipote/shipote/internal/flow.Splitter).Close":   "waits for the pump",
	"(*github.com/shipote/shipote/internal/procstats.Reader).Scan": "reads /proc",
	"github.com/shipote/shipote/internal/procstats.NewReader":      "opens /proc",
}

// Finding is one blocking call reachable from a Receive.
type Finding struct {
	Pos   token.Position
	Call  string   // the blocking call, e.g. "time.Sleep" or "<-ch"
	Why   string   // what it does
	Chain []string // the functions from the Receive to the call
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s (%s) reached by %s", f.Pos, f.Call, f.Why, strings.Join(f.Chain, " -> "))
}

// Check loads the packages matching patterns (go list syntax, relative to
// dir) and returns the blocking calls reachable from their Receive
// methods, sorted by position.
func Check(dir string, patterns ...string) ([]Finding, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo,
		Dir:  dir,
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, fmt.Errorf("receiveio: load %v: %w", patterns, err)
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("receiveio: no package matches %v", patterns)
	}
	var out []Finding
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			return nil, fmt.Errorf("receiveio: package %s: %v", p.PkgPath, p.Errors[0])
		}
		out = append(out, checkPackage(p)...)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Offset < b.Offset
	})
	return out, nil
}

type checker struct {
	pkg   *packages.Package
	decls map[*types.Func]*ast.FuncDecl
	seen  map[*types.Func]bool
	out   []Finding
}

func checkPackage(p *packages.Package) []Finding {
	c := &checker{pkg: p, decls: make(map[*types.Func]*ast.FuncDecl), seen: make(map[*types.Func]bool)}
	var roots []*types.Func
	for _, f := range p.Syntax {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			fn, ok := p.TypesInfo.Defs[fd.Name].(*types.Func)
			if !ok {
				continue
			}
			c.decls[fn] = fd
			if fd.Recv != nil && fd.Name.Name == "Receive" {
				roots = append(roots, fn)
			}
		}
	}
	for _, fn := range roots {
		c.visit(fn, []string{funcName(fn)})
	}
	return c.out
}

// visit reports the blocking calls in fn's body and follows the calls to
// functions of the package. Each function is visited once: a finding names
// the first chain that reached it.
func (c *checker) visit(fn *types.Func, chain []string) {
	if c.seen[fn] {
		return
	}
	c.seen[fn] = true
	c.walk(c.decls[fn].Body, chain)
}

func (c *checker) walk(body ast.Node, chain []string) {
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			return false // runs in its own goroutine
		case *ast.SelectStmt:
			if !hasDefault(n) {
				c.report(n.Pos(), "select without default", "waits on channels", chain)
			}
			// Walk the bodies of the clauses but not their comm
			// operations: a select with a default does not block.
			for _, cl := range n.Body.List {
				for _, s := range cl.(*ast.CommClause).Body {
					c.walk(s, chain)
				}
			}
			return false
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				c.report(n.Pos(), "<-"+exprString(n.X), "receives from a channel", chain)
			}
		case *ast.RangeStmt:
			if t, ok := c.pkg.TypesInfo.TypeOf(n.X).Underlying().(*types.Chan); ok && t != nil {
				c.report(n.Pos(), "range over "+exprString(n.X), "receives from a channel", chain)
			}
		case *ast.CallExpr:
			fn := c.callee(n)
			if fn != nil {
				full := fn.Origin().FullName()
				if why, ok := Blocking[full]; ok {
					c.report(n.Pos(), full, why, chain)
				}
			}
			if c.runsInGoroutine(n, fn) {
				// The function literals it is given run in a goroutine;
				// the other arguments are evaluated here.
				for _, a := range n.Args {
					if _, lit := a.(*ast.FuncLit); !lit {
						c.walk(a, chain)
					}
				}
				c.walk(n.Fun, chain)
				return false
			}
			if fn == nil {
				return true
			}
			if _, ok := c.decls[fn.Origin()]; ok {
				c.visit(fn.Origin(), append(append([]string(nil), chain...), funcName(fn)))
			}
		}
		return true
	})
}

// callee returns the function or method a call invokes, nil for calls of
// function values, conversions and builtins.
func (c *checker) callee(call *ast.CallExpr) *types.Func {
	fun := ast.Unparen(call.Fun)
	if ix, ok := fun.(*ast.IndexExpr); ok { // explicit instantiation
		fun = ix.X
	}
	if ix, ok := fun.(*ast.IndexListExpr); ok {
		fun = ix.X
	}
	var id *ast.Ident
	switch f := fun.(type) {
	case *ast.Ident:
		id = f
	case *ast.SelectorExpr:
		id = f.Sel
	default:
		return nil
	}
	fn, _ := c.pkg.TypesInfo.Uses[id].(*types.Func)
	return fn
}

// runsInGoroutine reports whether call runs the function it is given in a
// goroutine: the runtime's helpers (functions, methods or func-typed
// fields named Go or goroutine) and time.AfterFunc. fn is the callee, nil
// for a function value.
func (c *checker) runsInGoroutine(call *ast.CallExpr, fn *types.Func) bool {
	if fn != nil {
		return isGoName(fn.Name()) || fn.FullName() == "time.AfterFunc"
	}
	var id *ast.Ident
	switch f := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		id = f
	case *ast.SelectorExpr:
		id = f.Sel
	default:
		return false
	}
	v, ok := c.pkg.TypesInfo.Uses[id].(*types.Var)
	if !ok {
		return false
	}
	_, isFunc := v.Type().Underlying().(*types.Signature)
	return isFunc && isGoName(v.Name())
}

func isGoName(name string) bool { return name == "Go" || name == "goroutine" }

func (c *checker) report(pos token.Pos, call, why string, chain []string) {
	c.out = append(c.out, Finding{Pos: c.pkg.Fset.Position(pos), Call: call, Why: why, Chain: append([]string(nil), chain...)})
}

func hasDefault(s *ast.SelectStmt) bool {
	for _, cl := range s.Body.List {
		if cl.(*ast.CommClause).Comm == nil {
			return true
		}
	}
	return false
}

func funcName(fn *types.Func) string {
	if sig, ok := fn.Type().(*types.Signature); ok && sig.Recv() != nil {
		t := sig.Recv().Type()
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		if n, ok := t.(*types.Named); ok {
			return n.Obj().Name() + "." + fn.Name()
		}
	}
	return fn.Name()
}

func exprString(e ast.Expr) string {
	return types.ExprString(e)
}
