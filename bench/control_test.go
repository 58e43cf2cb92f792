package bench

import (
	"strings"
	"testing"
)

func TestControlRows(t *testing.T) {
	par := ControlParams{N: 10, Rounds: 5}
	res := []ControlResult{
		{System: SystemDaemon, Version: "0.1.0", Restart: Stat{Median: 4, Min: 3, Max: 6, N: 5}, Stop: Stat{Median: 2, Min: 1, Max: 3, N: 5}},
		{System: SystemPM2, Version: "6.0.5", Restart: st(300), Stop: st(15)},
		{System: SystemSupervd, Version: "4.2.5", Restart: st(1100), Stop: st(120)},
	}
	rows := ControlRows(par, res)
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4", len(rows))
	}
	byKey := map[string]Row{}
	for _, r := range rows {
		if r.Group != "control" || r.Unit != "ms" {
			t.Errorf("row %+v", r)
		}
		byKey[r.Name+"|"+r.Baseline] = r
	}
	pm := byKey[FigRestartOne+"|pm2 6.0.5"]
	if pm.Value != 4 || pm.Base != 300 || pm.Min != 3 || pm.Max != 6 || pm.Target != "<= 0.1x" || pm.Met == nil || !*pm.Met ||
		!strings.Contains(pm.Note, "`pm2 restart s000`") || !strings.Contains(pm.Note, "the faster peer") {
		t.Errorf("restart vs pm2: %+v", pm)
	}
	sv := byKey[FigRestartOne+"|supervisord 4.2.5"]
	if sv.Target != "" || sv.Met != nil || !strings.Contains(sv.Note, "startsecs") {
		t.Errorf("restart vs supervisord (the slower): %+v", sv)
	}
	// 2 ms against 15 ms is above 0.1x: not met.
	stop := byKey[FigStopOne+"|pm2 6.0.5"]
	if stop.Met == nil || *stop.Met {
		t.Errorf("stop vs pm2: %+v", stop)
	}
	// A missing peer: no target there, the other peer is the faster one.
	res[1] = ControlResult{System: SystemPM2, Missing: "pm2 not installed"}
	rows = ControlRows(par, res)
	for _, r := range rows {
		if strings.HasPrefix(r.Baseline, "pm2") && (r.Target != "" || !strings.Contains(r.Note, "pm2 not installed")) {
			t.Errorf("missing pm2: %+v", r)
		}
		if strings.HasPrefix(r.Baseline, "supervisord") && r.Target == "" {
			t.Errorf("supervisord is the only peer, so the faster: %+v", r)
		}
	}
}
