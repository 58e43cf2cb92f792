package shipote_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
)

// waitEnded polls a command until it has ended.
func waitEnded(ctx context.Context, eng *shipote.Engine, ws, cmd string) messages.CommandInfo {
	for {
		c, err := eng.Command(ctx, ws, cmd)
		if err != nil || c.State.Ended() {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Start an engine in your own actor system, run a command in a workspace
// and read its output.
func Example() {
	ctx := context.Background()
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none"})
	if err != nil {
		panic(err)
	}
	defer eng.Stop(ctx)

	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{
		Label:       "example",
		Permissions: messages.Permissions{Env: map[string]string{"NAME": "shipote"}},
	})
	if err != nil {
		panic(err)
	}
	cmd, err := eng.Exec(ctx, ws.ID, messages.CommandRef{
		Label:   "greet",
		Payload: messages.Payload{Native: &messages.NativePayload{Exec: "sh", Argv: []string{"-c", `echo "hello from $NAME"`}}},
	})
	if err != nil {
		panic(err)
	}
	end := waitEnded(ctx, eng, ws.ID, cmd.ID)
	lines, _ := eng.Logs(ctx, ws.ID, "greet", shipote.LogQuery{})
	fmt.Println(end.State, *end.ExitCode)
	for _, l := range lines {
		fmt.Println(l.Stream, l.Line)
	}
	// Output:
	// exited 0
	// out hello from shipote
}

// Restart a failing command with a doubling backoff until it gives up.
func ExampleEngine_Exec_supervised() {
	ctx := context.Background()
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none"})
	if err != nil {
		panic(err)
	}
	defer eng.Stop(ctx)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "flaky"}); err != nil {
		panic(err)
	}
	_, err = eng.Exec(ctx, "flaky", messages.CommandRef{
		Label:   "fail",
		Payload: messages.Payload{Native: &messages.NativePayload{Exec: "false"}},
		Supervision: messages.Supervision{Restart: &messages.RestartPolicy{
			On: messages.RestartOnFailure, BackoffMs: 10, MaxBackoffMs: 80, Max: 3,
		}},
	})
	if err != nil {
		panic(err)
	}
	end := waitEnded(ctx, eng, "flaky", "fail")
	fmt.Println(end.State, "restarts:", end.Restarts, "gave up:", end.GaveUp)
	// Output:
	// failed restarts: 3 gave up: true
}

// Run a fan-out pipeline: one producer, two consumers.
func ExampleEngine_RunPipeline() {
	ctx := context.Background()
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none"})
	if err != nil {
		panic(err)
	}
	defer eng.Stop(ctx)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "pipes"}); err != nil {
		panic(err)
	}
	n := func(label, exec string, argv ...string) messages.Node {
		return messages.Node{Label: label, Payload: messages.Payload{Native: &messages.NativePayload{Exec: exec, Argv: argv}}}
	}
	run, err := eng.RunPipeline(ctx, "pipes", messages.PipelineSpec{
		Label: "fanout",
		Nodes: []messages.Node{n("gen", "seq", "1", "100000"), n("count", "wc", "-l"), n("sevens", "grep", "-c", "7")},
		Edges: []messages.Edge{{From: "gen", To: "count"}, {From: "gen", To: "sevens"}},
	}, false)
	if err != nil {
		panic(err)
	}
	var info messages.PipelineInfo
	for info.State == "" || !info.State.Ended() {
		time.Sleep(10 * time.Millisecond)
		info, _ = eng.Pipeline(ctx, run.ID)
	}
	count, _ := eng.NodeLogs(ctx, run.ID, "count", shipote.LogQuery{})
	sevens, _ := eng.NodeLogs(ctx, run.ID, "sevens", shipote.LogQuery{})
	fmt.Println(info.State, count[0].Line, sevens[0].Line)
	for _, c := range info.Splitters[0].Channels {
		fmt.Println(c.From, "->", c.To, c.BytesTotal, "bytes")
	}
	// Output:
	// succeeded 100000 40951
	// gen -> count 588895 bytes
	// gen -> sevens 588895 bytes
}
