// This file checks that the tests of package daemon leave no goroutine behind.

package daemon

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
