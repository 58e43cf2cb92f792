// This file checks that the tests of package logs leave no goroutine behind.

package logs

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
