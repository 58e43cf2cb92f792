// This file checks that the tests of package up leave no goroutine behind.

package up

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
