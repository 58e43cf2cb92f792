// This file checks that the tests of package apply leave no goroutine
// behind.

package apply

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
