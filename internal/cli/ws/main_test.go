// This file checks that the tests of package ws leave no goroutine behind.

package ws

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
