// This file checks that the tests of package dash leave no goroutine behind.

package dash

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
