package dynamo_test

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the emulator die with the test binary, even when it
// is killed by a test timeout before TestMain can stop it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
