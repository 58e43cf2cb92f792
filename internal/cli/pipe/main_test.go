// This file checks that the tests of package pipe leave no goroutine behind.

package pipe

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
