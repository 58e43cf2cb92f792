// This file checks that the tests of package service leave no goroutine behind.

package service

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
