// This file checks that the tests of package stats leave no goroutine behind.

package stats

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
