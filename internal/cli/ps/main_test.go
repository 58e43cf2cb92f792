// This file checks that the tests of package ps leave no goroutine behind.

package ps

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
