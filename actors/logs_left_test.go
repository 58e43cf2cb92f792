package actors

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/shipote/shipote/internal/logfile"
)

func TestCloseLogsLeftClosesWhatNoWorkspaceHolds(t *testing.T) {
	defer goleak.VerifyNone(t)
	rt := &Runtime{Log: zap.NewNop(), LogDir: t.TempDir()}
	var ws []*logfile.Writer
	for _, name := range []string{"a", "b"} {
		w, err := rt.openLog("ws1", 0, 0, name)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	rt.closeLog(ws[0]) // its workspace closed this one
	rt.CloseLogsLeft()
	if !rt.WaitGoroutines(30 * time.Second) {
		t.Fatal("the closes did not end")
	}
	for i, w := range ws {
		if err := w.Reopen(); !errors.Is(err, logfile.ErrClosed) {
			t.Errorf("writer %d: reopen after CloseLogsLeft: %v, want ErrClosed", i, err)
		}
	}
	if n := len(rt.logs); n != 0 {
		t.Errorf("%d log files still registered", n)
	}
}
