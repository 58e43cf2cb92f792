package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

// TestWriteJSONMatchesEncodingJSON holds writeJSON to the bytes of
// encoding/json's Encoder without HTML escaping, on the views of a live
// engine and on strings that the two encoders could treat differently.
func TestWriteJSONMatchesEncodingJSON(t *testing.T) {
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none", Grace: time.Second, SampleInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "enc", TTLMs: 600_000,
		Permissions: messages.Permissions{Env: map[string]string{"HTML": "<a href=\"x\">&amp;</a>", "LS": "\u2028\u2029", "EMOJI": "é🙂"}}})
	if err != nil {
		t.Fatal(err)
	}
	native := func(exec string, argv ...string) messages.Payload {
		return messages.Payload{Native: &messages.NativePayload{Exec: exec, Argv: argv}}
	}
	if _, err := eng.Exec(ctx, ws.ID, messages.CommandRef{Label: "exit3", Payload: native("sh", "-c", "exit 3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Exec(ctx, ws.ID, messages.CommandRef{Label: "sleeper", Payload: native("sleep", "60"),
		Supervision: messages.Supervision{Restart: &messages.RestartPolicy{On: messages.RestartOnFailure, BackoffMs: 5, Max: 2}}}); err != nil {
		t.Fatal(err)
	}
	run, err := eng.RunPipeline(ctx, ws.ID, messages.PipelineSpec{Label: "p",
		Nodes:   []messages.Node{{Label: "gen", Payload: native("yes")}, {Label: "sink", Payload: native("cat")}},
		Edges:   []messages.Edge{{From: "gen", To: "sink"}},
		Discern: messages.DiscernPolicy{MaxBytesPerSec: 1 << 20}}, false)
	if err != nil {
		t.Fatal(err)
	}
	var samples []messages.Sample
	for deadline := time.Now().Add(20 * time.Second); len(samples) < 2 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if samples, err = eng.Stats(ctx, ws.ID); err != nil {
			t.Fatal(err)
		}
	}
	wss, err := eng.Workspaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := eng.Commands(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	pipes, err := eng.Pipelines(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	info, err := eng.Pipeline(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"workspaces": wss, "commands": cmds, "pipelines": pipes, "pipeline": info, "samples": samples,
		"empty list": []messages.WorkspaceInfo{}, "nil list": []messages.CommandInfo(nil),
		"error":   api.ErrorBody{Error: api.ErrorFields{Code: api.CodeNotFound, Message: `no workspace "<x>" & co`, Field: "workspace"}},
		"version": api.VersionInfo{Version: shipote.Version, GoVersion: "go", LimitsBackend: "none", Orphans: "pid-namespace (kernel)", Socket: "/tmp/s.sock"},
		"strings": map[string]string{"invalid": "a\xffb", "controls": "\x00\x1f\t\n\"\\", "html": "<>&", "ls": "\u2028\u2029"},
	}
	for name, v := range values {
		rec := httptest.NewRecorder()
		if err := writeJSON(rec, 200, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := rec.Body.String(); got != want.String() {
			t.Errorf("%s: writeJSON wrote\n%s\nencoding/json writes\n%s", name, got, want.String())
		}
		if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Content-Length") == "" {
			t.Errorf("%s: headers %v", name, rec.Header())
		}
	}
}
