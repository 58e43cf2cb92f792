// This file checks that the tests of package cmdutil leave no goroutine behind.

package cmdutil

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
