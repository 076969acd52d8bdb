//go:build !linux

package dynamo_test

import "os/exec"

// dieWithParent is a no-op off Linux: TestMain stops the emulators.
func dieWithParent(*exec.Cmd) {}
