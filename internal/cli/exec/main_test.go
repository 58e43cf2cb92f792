// This file checks that the tests of package exec leave no goroutine behind.

package exec

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
