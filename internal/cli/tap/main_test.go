// This file checks that the tests of package tap leave no goroutine behind.

package tap

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
