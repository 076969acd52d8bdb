//go:build !linux

package localstack

import "os/exec"

// dieWithParent is a no-op off Linux: Stop (a test's cleanup) stops the emulator.
func dieWithParent(*exec.Cmd) {}
