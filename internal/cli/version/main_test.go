// This file checks that the tests of package version leave no goroutine behind.

package version

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
