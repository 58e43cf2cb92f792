package shipote

import (
	"time"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/internal/eventhub"
)

type subscription = eventhub.Subscription

func nextBackoffForTest(b func() (int64, int64), streak *int, ran time.Duration) time.Duration {
	return actors.NextBackoff(b, streak, ran)
}
