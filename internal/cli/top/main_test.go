// This file checks that the tests of package top leave no goroutine behind.

package top

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
