// This file checks that the tests of package events leave no goroutine behind.

package events

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
