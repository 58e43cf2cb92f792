// This file owns the daemon's zap logger: level, and console or JSON
// encoding on stderr.

package daemon

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/shipote/shipote/internal/cli/cmdutil"
)

func parseLevel(s string) (zapcore.Level, error) {
	l, err := zapcore.ParseLevel(s)
	if err != nil {
		return l, fmt.Errorf("want debug, info, warn or error")
	}
	return l, nil
}

// newLogger logs to ios.ErrOut at level; format auto is console when
// stderr is a terminal and JSON otherwise.
func newLogger(ios *cmdutil.IOStreams, level, format string) (*zap.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	console := format == "console" || (format == "auto" && ios.IsStderrTTY())
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	if console {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		if ios.IsStderrTTY() {
			encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		encCfg.EncodeCaller = nil
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(ios.ErrOut)), lvl)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(ios.ErrOut)))).Named("shipote"), nil
}
