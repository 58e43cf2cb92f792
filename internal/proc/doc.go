// Package proc spawns, waits for and kills the OS processes of shipote's
// workspaces. It never runs a shell: argv goes to execve as given, with
// exactly the environment it is given.
//
// Before spawning, Resolve turns a command's exec into an absolute path with
// the command's own PATH and CheckAllowed checks it against allow_exec.
//
// A Spawner forks every child on one goroutine locked to one OS thread for
// the Spawner's whole life. Each child leads its own process group. Where
// the process may create PID namespaces (root), every child is forked into
// the Spawner's PID namespace, whose init (this binary re-executed, see
// pidns.go) gets SIGKILL from the kernel (PDEATHSIG) when that thread ends:
// when the daemon dies, even by SIGKILL, or when the Spawner is closed. The
// kernel then kills every process of the namespace, however far from the
// child it was forked, setsid'd or re-parented. Elsewhere each child gets
// PDEATHSIG itself (its descendants do not); Spawner.Orphans says which. A child can be born
// directly inside its workspace's cgroup (v2: clone3 with CLONE_INTO_CGROUP;
// v1: the spawning thread joins the cgroup for the fork). Its stdio are
// *os.File passed as they are, so no goroutine copies them and Wait never
// waits for a pipe. Wait holds no OS thread either: it parks its goroutine on
// the runtime's poller until the child's pidfd is readable, then reaps the
// child with waitid(P_PIDFD), so thousands of waiting goroutines cost no
// thread each.
//
// KillGroup and Terminate end process groups (SIGTERM, a grace period,
// SIGKILL); Descendants finds the processes that left their group.
package proc
