// This file checks that the tests of package control leave no goroutine
// behind.

package control

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
