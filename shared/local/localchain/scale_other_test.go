//go:build !linux

package localchain_test

import "os/exec"

// dieWithParent is a no-op off Linux: the test's cleanup stops the emulator.
func dieWithParent(*exec.Cmd) {}
