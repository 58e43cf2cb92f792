// This file checks that the tests of package snapshot leave no goroutine behind.

package snapshot

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
