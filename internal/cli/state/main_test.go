// This file checks that the tests of package state leave no goroutine behind.

package state

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
